# Log records as one JSON line each on stderr, for the Python bridge to forward to Prefect's logger.
#
# The formatter is kept small and free of per-call-site specialisation (`@nospecialize`), and it is run once
# while the package precompiles, so a job pays no compilation for its first log record.

# This package's code is glue around I/O: compiling it with fewer LLVM passes costs a job less start-up than
# the faster machine code would save. (Jobs' own code, in Main, keeps the default level.)
Base.Experimental.@optlevel 1

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
    @nospecialize
    lock(l.lock)
    try
        return get(l.message_limits, id, 1) > 0
    finally
        unlock(l.lock)
    end
end

"Prefect's (Python's) level name for a Julia log level."
prefectlevel(level::LogLevel) = level < Logging.Info ? "DEBUG" : level < Logging.Warn ? "INFO" :
                                level < Logging.Error ? "WARNING" : "ERROR"

function logvalue(@nospecialize(v))
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

"A module's name as a log record shows it; a warm session's job module `Main.Main` is shown as `Main`."
function modulename(@nospecialize(m))
    m === nothing && return ""
    name = string(m)::String
    return startswith(name, "Main.Main") ? name[6:end] : name
end

"The JSON line (without the prefix) for one record."
function logline(level, message, _module, file, line, kwargs)
    @nospecialize
    text = IOBuffer()
    print(text, message isa AbstractString || message isa SecretValue ? string(message) : logvalue(message))
    for (k, v) in kwargs
        print(text, " ", k, "=", logvalue(v))
    end
    io = IOBuffer()
    write(io, "{\"level\":")
    writejson(io, prefectlevel(convert(LogLevel, level))::String)
    write(io, ",\"message\":")
    writejson(io, scrub(String(take!(text)))::String)
    write(io, ",\"module\":")
    writejson(io, modulename(_module))
    write(io, ",\"file\":")
    writejson(io, file === nothing ? "" : string(file)::String)
    write(io, ",\"line\":")
    line isa Integer ? print(io, Int(line)) : write(io, "null")
    write(io, '}')
    return String(take!(io))
end

function Logging.handle_message(l::PrefectLogger, level, message, _module, group, id, file, line; kwargs...)
    @nospecialize
    maxlog = nothing
    rest = Pair{Symbol,Any}[]
    for (k, v) in kwargs
        k === :maxlog ? (maxlog = v) : push!(rest, k => v)
    end
    writerecord(l, level, message, _module, id, file, line, maxlog, rest)
    return nothing
end

function writerecord(l::PrefectLogger, level, message, _module, id, file, line, maxlog, rest::Vector{Pair{Symbol,Any}})
    @nospecialize
    if maxlog isa Integer
        lock(l.lock)
        remaining = try
            l.message_limits[id] = get(l.message_limits, id, maxlog) - 1
        finally
            unlock(l.lock)
        end
        remaining < 0 && return nothing
    end
    text = string(LOG_PREFIX, logline(level, message, _module, file, line, rest), "\n")
    stream = l.stream === nothing ? stderr : l.stream
    lock(l.lock)
    try
        write(stream, text)
        flush(stream)
    finally
        unlock(l.lock)
    end
    return nothing
end

# --- an uncaught error: one ERROR record ---------------------------------------------------------------------

"Whether a stack frame belongs to this package (its code, wherever its files were compiled from)."
function packageframe(frame::Base.StackTraces.StackFrame)
    mi = frame.linfo
    mi isa Core.MethodInstance || return false
    def = mi.def
    m = def isa Method ? def.module : def
    while m isa Module
        m === (@__MODULE__) && return true
        parent = parentmodule(m)
        parent === m && return false
        m = parent
    end
    return false
end

"Whether a stack frame is in the job's own files (the job's folder)."
jobframe(frame::Base.StackTraces.StackFrame, jobdir::AbstractString) =
    startswith(abspath(string(frame.file)), jobdir)

"""
    uncaught_record(err, backtrace, program) -> String

The log line (with its prefix) of an error that ended the job `program`: one ERROR record whose `message`
is the error as Julia shows it, `file` and `line` the innermost place in the job's own files, and
`stacktrace` the trace cut down to the job's frames and this package's. `uncaught` marks it.
"""
function uncaught_record(@nospecialize(err), backtrace, program::AbstractString)
    file, line = abspath(program), nothing
    if err isa LoadError
        file, line = abspath(err.file), err.line
        err = err.error
    end
    jobdir = dirname(abspath(program)) * "/"
    frames = Base.StackTraces.StackFrame[]
    for frame in stacktrace(backtrace)
        entry = frame.func === :runjob || frame.func === :report_uncaught  # the entry point itself
        (jobframe(frame, jobdir) || (packageframe(frame) && !entry)) && push!(frames, frame)
    end
    first_job = findfirst(f -> jobframe(f, jobdir), frames)
    if first_job !== nothing
        file, line = abspath(string(frames[first_job].file)), frames[first_job].line
    end
    trace = IOBuffer()
    print(trace, "Stacktrace:")
    for (i, frame) in enumerate(frames)
        print(trace, "\n [", i, "] ", sprint(show, frame))
    end
    io = IOBuffer()
    write(io, LOG_PREFIX, "{\"level\":\"ERROR\",\"message\":")
    writejson(io, scrub(rstrip(sprint(showerror, err))))
    write(io, ",\"module\":\"Main\",\"file\":")
    writejson(io, file)
    write(io, ",\"line\":")
    line isa Integer ? print(io, Int(line)) : write(io, "null")
    write(io, ",\"stacktrace\":")
    writejson(io, scrub(isempty(frames) ? "" : String(take!(trace))))
    write(io, ",\"uncaught\":true}\n")
    return String(take!(io))
end

# Run the formatter and the result writer once while the package precompiles, so their compiled code is
# cached with it instead of being compiled again by every job.
function _precompile_workload()
    io = IOBuffer()
    logger = PrefectLogger(io)
    Logging.with_logger(logger) do
        @info "precompile" n = 1 x = 1.5 s = "s" v = [1, 2]
        @warn "precompile"
        @error "precompile" exception = ErrorException("x")
    end
    for stream in (stderr, stdout)
        precompile(writerecord, (PrefectLogger, LogLevel, String, Module, Symbol, String, Int, Nothing,
                                 Vector{Pair{Symbol,Any}}))
    end
    json(Dict{String,Any}("a" => 1, "b" => "x", "c" => [1.5], "d" => Dict("e" => nothing), "f" => true))
    json(Dict("a" => "b"))
    json(Dict("a" => Dict("b" => "c")))
    parseargs(["--a=b"])
    tmp = tempname()
    try
        atomicwrite(tmp, "{}")
        result = Dict{String,Any}("greeting" => "x", "args" => Dict("a" => "b"), "n" => 1)
        setresult(result; env=Dict("PREFECT_JULIA_RESULT_PATH" => tmp))
    finally
        rm(tmp; force=true)
    end
    return nothing
end
ccall(:jl_generating_output, Cint, ()) == 1 && _precompile_workload()
