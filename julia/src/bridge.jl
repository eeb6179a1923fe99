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

Only its own user is served: a connection from another uid (see [`peer_uid`](@ref)) is answered with one
refusal line and closed. Only programs under one of the folders `programs` run (default: the active
project's `jobs/`; see [`program_allowed`](@ref)); another program is refused, with exit code 1.
"""
function serve_session(socketpath::AbstractString; idle::Real=1800, programs=default_programs())
    folders = String[String(f) for f in programs]
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
            refusal = refuse_peer(sock)
            if refusal !== nothing
                drainline(sock, 2.0)  # so closing it does not reset the connection before the peer reads why
                refused(sock, refusal)
                continue
            end
            request = parsejson(readline(sock))
            program = String(request["program"])
            if !program_allowed(program, folders)
                refused(sock, "the program $program is outside the folders this session runs programs from " *
                              "($(join(folders, ", "))); PREFECT_JULIA_SESSION_PROGRAMS lists more folders")
                continue
            end
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

"The active project's `jobs/` folder: where a session takes programs from unless told otherwise."
default_programs() = [joinpath(dirname(something(Base.active_project(), joinpath(pwd(), "Project.toml"))), "jobs")]

"""
    program_allowed(program, folders) -> Bool

True when the file `program` (links resolved) lies inside one of `folders` (links resolved too).
"""
function program_allowed(program::AbstractString, folders::AbstractVector{<:AbstractString})
    ispath(program) || return false
    path = realpath(program)
    for folder in folders
        isdir(folder) || continue
        root = realpath(folder)
        startswith(path, rstrip(root, '/') * "/") && return true
    end
    return false
end

const SOL_SOCKET = Cint(1)
const SO_PEERCRED = Sys.ARCH in (:powerpc64le, :ppc64le) ? Cint(21) : Cint(17)

"""
    peer_uid(sock) -> Union{UInt32,Nothing}

The user id of the process at the other end of the Unix socket `sock` (Linux: `SO_PEERCRED`; macOS and the
BSDs: `getpeereid`); `nothing` when it cannot be read.
"""
function peer_uid(sock::Base.LibuvStream)
    fd = reinterpret(Cint, Base._fd(sock))
    if Sys.islinux()
        cred = zeros(Cuint, 3)  # struct ucred: pid, uid, gid
        len = Ref{Cuint}(sizeof(cred))
        rc = ccall(:getsockopt, Cint, (Cint, Cint, Cint, Ptr{Cvoid}, Ref{Cuint}), fd, SOL_SOCKET, SO_PEERCRED, cred, len)
        return rc == 0 && len[] == sizeof(cred) ? cred[2] : nothing
    elseif Sys.isapple() || Sys.isbsd()
        uid, gid = Ref{Cuint}(0), Ref{Cuint}(0)
        rc = ccall(:getpeereid, Cint, (Cint, Ref{Cuint}, Ref{Cuint}), fd, uid, gid)
        return rc == 0 ? uid[] : nothing
    end
    return nothing
end

"Why the peer of `sock` may not use this session (another user, or one that cannot be told); `nothing` if it may."
function refuse_peer(sock)
    own = ccall(:geteuid, Cuint, ())
    uid = peer_uid(sock)
    uid === nothing && return "the user at the other end of the socket cannot be read"
    uid == own || return "uid $uid is not this session's user (uid $own)"
    return nothing
end

"Read (and drop) the peer's request line, waiting at most `seconds` for it."
function drainline(sock::IO, seconds::Real)
    timer = Timer(_ -> close(sock), seconds)
    try
        readline(sock)
    catch
    finally
        close(timer)
    end
    return nothing
end

"Answer a refused request with one line (also written to the session's log) and exit code 1."
function refused(sock::IO, why::AbstractString)
    println(stderr, "warm session: refused a request: ", why)
    isopen(sock) && write(sock, "2 session refused: $why\nx 1\n")
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
