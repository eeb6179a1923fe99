# What a Julia job started by a Prefect flow needs: its parameters and a way to hand back a result.

"""
    parseargs(args=ARGS) -> Dict{String,String}

Parse `--key=value` arguments (as the flow passes its parameters). Values may be empty or hold `=`.
Raises [`ArgumentsError`](@ref) for anything else, or for a key given twice.
"""
function parseargs(args::AbstractVector{<:AbstractString}=ARGS)
    out = Dict{String,String}()
    for arg in args
        m = match(r"^--([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$"s, arg)
        if m === nothing
            reason = startswith(arg, "--") && !occursin('=', arg) ? "it has no \"=value\"." :
                     startswith(arg, "--") ? "the key must start with a letter or '_' and hold letters, digits, '_', '-' or '.'." :
                     "it does not start with \"--\"."
            throw(ArgumentsError(String(arg), reason))
        end
        key = String(m.captures[1])
        haskey(out, key) && throw(ArgumentsError(String(arg), "--$key is given more than once."))
        out[key] = String(m.captures[2])
    end
    return out
end

"""
    setresult(value; env=ENV) -> value

Hand `value` (a `Dict`, `Vector`, `String`, number, `Bool` or `nothing`) back to the flow that started
this job: it is written as JSON, atomically, to the file named by `PREFECT_JULIA_RESULT_PATH`. When that
variable is unset, nothing is written. Returns `value`.
"""
function setresult(value; env::AbstractDict=ENV)
    path = get(env, "PREFECT_JULIA_RESULT_PATH", "")
    isempty(path) && return value
    # The flow reads the file as soon as the job exits, so no fsync: a temporary file renamed into place.
    tmp = string(path, ".tmp-", getpid())
    write(tmp, json(value))
    Base.Filesystem.rename(tmp, path)
    return value
end

# --- the entry point of a job -------------------------------------------------------------------------------

"""
    runjob(program)

Run the job file `program` as `julia program args...` would (in `Main`, with `PROGRAM_FILE` set; `ARGS`
are the job's arguments), but end an uncaught error with one ERROR log record on stderr (the error, the
job's file and line, and the stack trace cut down to the job's frames and this package's; see
`uncaught_record`) and exit code 1. `exit(n)` in the job ends it with code `n` as usual. The bridge starts
fresh jobs with `julia -e 'import PrefectInterfaces; PrefectInterfaces.runjob(popfirst!(ARGS))' program args...`.
"""
function runjob(program::AbstractString)
    Core.eval(Base, :(PROGRAM_FILE = $(String(program))))
    try
        Base.include(Main, program)
    catch err
        report_uncaught(err, catch_backtrace(), program)
        exit(1)
    end
    return nothing
end

"Write the ERROR record of an error that ended the job `program` (the plain error if that fails)."
function report_uncaught(@nospecialize(err), backtrace, program::AbstractString)
    text = try
        Base.invokelatest(uncaught_record, err, backtrace, program)
    catch
        string("ERROR: ", sprint(showerror, err), "\n")
    end
    write(stderr, text)
    flush(stderr)
    return nothing
end

# --- the warm session: one kept julia process running job after job ------------------------------------------

import Sockets

"Thrown by `exit(code)` inside a job run by a warm session, so the job ends but the session does not."
struct JobExit <: Exception
    code::Int
end

"""
    serve_session(socketpath; idle=1800)

Run a warm session: listen on the Unix socket `socketpath` and run one job per connection, one after the
other, each like `julia program.jl args...` would: in a fresh module named `Main` (so no job sees another's
globals), with its own `ARGS`, `ENV`, working directory, `PROGRAM_FILE`, stdout and stderr, and a fresh
[`PrefectLogger`](@ref). Loaded packages and compiled code stay between jobs. Exits after `idle` seconds
without a job.

A request is one JSON line `{"program", "args", "env", "cwd"}`; the answer is the job's output lines, each
prefixed `1 ` (stdout) or `2 ` (stderr), then `x CODE` with its exit code (1 after an uncaught error,
`exit`'s argument otherwise).
"""
function serve_session(socketpath::AbstractString; idle::Real=1800)
    server = Sockets.listen(socketpath)
    inode = stat(socketpath).inode
    lastjob = Ref(time())
    # Between jobs, every few seconds: end after `idle` seconds, or when the socket is no longer ours (the
    # session was replaced, or its folder removed), so no session is left without a way to reach it.
    watch = Timer(1; interval=2) do t
        if time() - lastjob[] > idle || stat(socketpath).inode != inode
            close(server)
            close(t)
        end
    end
    while isopen(server)
        sock = try
            Sockets.accept(server)
        catch
            break
        end
        lastjob[] = Inf  # busy: never idle
        try
            request = parsejson(readline(sock))
            code = runjob(sock, request)
            write(sock, "x $code\n")
        catch err
            isopen(sock) && write(sock, "2 session error: $(sprint(showerror, err))\nx 1\n")
        finally
            close(sock)
            lastjob[] = time()
        end
    end
    close(watch)
    return nothing
end

function forwardlines(from::IO, to::IO, tag::String, lk::ReentrantLock)
    for line in eachline(from)
        lock(lk) do
            write(to, tag, line, "\n")
        end
    end
end

"Make `ENV` hold exactly `values`."
function setenviron!(values::AbstractDict)
    for name in collect(keys(ENV))
        haskey(values, name) || delete!(ENV, name)
    end
    for (name, value) in values
        ENV[name] = value
    end
end

"Forget what the package remembers for one job (cached blocks, loaded secrets), so the next job starts clean."
function resetjobstate!()
    isdefined(@__MODULE__, :clear_block_cache!) && clear_block_cache!()
    if isdefined(@__MODULE__, :SECRET_TEXTS)
        lock(() -> empty!(SECRET_TEXTS), SECRET_LOCK)
    end
    return nothing
end

"Run one job from a session request; returns its exit code."
function runjob(sock::IO, request::AbstractDict)
    program = String(request["program"])
    args = String[string(a) for a in request["args"]]
    jobenv = Dict{String,String}(String(k) => string(v) for (k, v) in request["env"])
    saved_env, saved_args, saved_dir = Dict{String,String}(ENV), copy(ARGS), pwd()
    saved_program = Base.PROGRAM_FILE
    out, err = stdout, stderr
    out_rd, out_wr = redirect_stdout()
    err_rd, err_wr = redirect_stderr()
    lk = ReentrantLock()
    readers = [@async(forwardlines(out_rd, sock, "1 ", lk)), @async(forwardlines(err_rd, sock, "2 ", lk))]
    code = 0
    try
        setenviron!(jobenv)
        empty!(ARGS)
        append!(ARGS, args)
        cd(String(request["cwd"]))
        Core.eval(Base, :(PROGRAM_FILE = $program))
        jobmodule = Module(:Main)
        Core.eval(jobmodule, quote
            eval(x) = Core.eval($jobmodule, x)
            include(x) = Base.include($jobmodule, x)
            exit(code::Integer=0) = throw($JobExit(code))
        end)
        Logging.with_logger(PrefectLogger()) do
            Base.include(jobmodule, program)
        end
    catch e
        inner = e isa LoadError ? e.error : e
        if inner isa JobExit
            code = inner.code
        else
            code = 1
            report_uncaught(e, catch_backtrace(), program)
        end
    finally
        Base.Libc.flush_cstdio()
        redirect_stdout(out)
        redirect_stderr(err)
        close(out_wr)
        close(err_wr)
        foreach(wait, readers)
        setenviron!(saved_env)
        resetjobstate!()
        empty!(ARGS)
        append!(ARGS, saved_args)
        Core.eval(Base, :(PROGRAM_FILE = $saved_program))
        cd(saved_dir)
    end
    return code
end
