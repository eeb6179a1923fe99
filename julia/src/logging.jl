# Log records as one JSON line each on stderr, for the Python bridge to forward to Prefect's logger.

const LOG_PREFIX = "::prefect-log::"

"""
    PrefectLogger(stream=nothing; min_level=Logging.Info)

A logger that writes each record as one line: `::prefect-log::` and a JSON object with `level`
(`DEBUG`, `INFO`, `WARNING`, `ERROR`), `message` (the key=value pairs of the log call appended as
` key=value`), `module`, `file` and `line`. Secrets are masked. `stream` defaults to the current `stderr`.
Installed as the global logger at load time when `PREFECT_JULIA_LOG_FORMAT=prefect`; `JULIA_DEBUG` enables
debug records as usual.
"""
struct PrefectLogger <: AbstractLogger
    stream::Union{Nothing,IO}
    min_level::LogLevel
    message_limits::Dict{Any,Int}
    lock::ReentrantLock
end

PrefectLogger(stream::Union{Nothing,IO}=nothing; min_level::LogLevel=Logging.Info) =
    PrefectLogger(stream, min_level, Dict{Any,Int}(), ReentrantLock())

Logging.min_enabled_level(l::PrefectLogger) = l.min_level
Logging.catch_exceptions(::PrefectLogger) = true
function Logging.shouldlog(l::PrefectLogger, level, _module, group, id)
    lock(l.lock) do
        get(l.message_limits, id, 1) > 0
    end
end

"Prefect's (Python's) level name for a Julia log level."
prefectlevel(level::LogLevel) = level < Logging.Info ? "DEBUG" : level < Logging.Warn ? "INFO" :
                                level < Logging.Error ? "WARNING" : "ERROR"

function logvalue(v)
    if v isa Tuple && length(v) == 2 && v[1] isa Exception
        return sprint(showerror, v[1], v[2])
    elseif v isa Exception
        return sprint(showerror, v)
    elseif v isa AbstractString || v isa SecretValue
        return string(v)
    else
        return sprint(show, v; context=:limit => true)
    end
end

"The JSON line (without the prefix) for one record."
function logline(level, message, _module, file, line, kwargs)
    io = IOBuffer()
    print(io, message isa AbstractString || message isa SecretValue ? string(message) : logvalue(message))
    for (k, v) in kwargs
        print(io, " ", k, "=", logvalue(v))
    end
    record = NamedTuple{(:level, :message, :module, :file, :line)}((
        prefectlevel(convert(LogLevel, level)),
        scrub(String(take!(io))),
        _module === nothing ? "" : string(_module),
        file === nothing ? "" : string(file),
        line isa Integer ? Int(line) : nothing,
    ))
    return json(record)
end

function Logging.handle_message(l::PrefectLogger, level, message, _module, group, id, file, line; kwargs...)
    maxlog = nothing
    rest = Pair{Symbol,Any}[]
    for (k, v) in kwargs
        k === :maxlog ? (maxlog = v) : push!(rest, k => v)
    end
    if maxlog isa Integer
        remaining = lock(l.lock) do
            l.message_limits[id] = get(l.message_limits, id, maxlog) - 1
        end
        remaining < 0 && return nothing
    end
    text = string(LOG_PREFIX, logline(level, message, _module, file, line, rest), "\n")
    stream = l.stream === nothing ? stderr : l.stream
    lock(l.lock) do
        write(stream, text)
        flush(stream)
    end
    return nothing
end
