"""Running things: a deployment run followed from the command line, its parameters, the status screen and the demo."""
