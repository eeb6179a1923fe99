# A tiny job for the Prefect bridge: reads --name (and any other --key=value), logs, hands back a result.
#
#   julia --project=julia --startup-file=no julia/jobs/hello.jl --name=world
using PrefectInterfaces

args = parseargs()
name = get(args, "name", "world")
@info "hello, $name" nargs = length(args)
haskey(args, "warn") && @warn "asked to warn" warn = args["warn"]
setresult(Dict("greeting" => "hello, $name", "args" => args, "julia" => string(VERSION)))
