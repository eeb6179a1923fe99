# Reading and writing files of a local-file-system block. Writes are atomic: a temporary file in the same
# folder (`.NAME.tmp-PID-N`, the same pattern the Python kit uses), flushed to disk, then renamed over the
# target, so readers see the old or the new file, never half. A writer killed mid-write leaves its temporary
# file behind; the next write to that target removes every one whose writer process no longer runs.

"`true` while process `pid` exists (signal 0 probes without signalling)."
function processalive(pid::Integer)
    ccall(:kill, Cint, (Cint, Cint), pid, 0) == 0 && return true
    return Libc.errno() != Libc.ESRCH     # EPERM: it exists, owned by someone else
end

"""
    sweepstaletemps(path) -> Vector{String}

Remove the temporary files beside `path` left by killed writes to it (their writer no longer runs).
Returns the removed paths.
"""
function sweepstaletemps(path::AbstractString)
    dir = dirname(String(path))
    dir = isempty(dir) ? "." : dir
    prefix = string(".", basename(path), ".tmp-")
    removed = String[]
    isdir(dir) || return removed
    for name in readdir(dir)
        startswith(name, prefix) || continue
        pidtext = split(name[length(prefix)+1:end], "-"; limit=2)[1]
        pid = tryparse(Int, pidtext)
        (pid === nothing || processalive(pid)) && continue
        full = joinpath(dir, name)
        try
            rm(full)
            push!(removed, full)
        catch
        end
    end
    return removed
end

# The number that makes a temporary file's name unique within its process. Not `rand`: Julia's default random
# generator is not set up while a Julia image is being compiled, and the package's precompile workload writes.
const TEMP_NUMBER = Threads.Atomic{UInt64}(0)
nexttempnumber() = Threads.atomic_add!(TEMP_NUMBER, UInt64(1)) + UInt64(1)

"""
    atomicwrite(path, data) -> String

Write `data` (bytes, a string or an `IO` read to its end) to `path` atomically, creating missing folders.
Returns `path`. On any failure the previous file at `path` is left untouched.
"""
function atomicwrite(path::AbstractString, data)
    path = String(path)
    dir = dirname(path)
    isempty(dir) || mkpath(dir)
    sweepstaletemps(path)
    tmp = joinpath(isempty(dir) ? "." : dir, string(".", basename(path), ".tmp-", getpid(), "-", nexttempnumber()))
    try
        open(tmp, "w") do io
            writedata(io, data)
            flush(io)
            ccall(:fsync, Cint, (Cint,), fdnumber(fd(io)))
        end
        ret = ccall(:rename, Cint, (Cstring, Cstring), tmp, path)
        ret == 0 || systemerror("rename $tmp to $path", true)
    catch
        rm(tmp; force=true)
        rethrow()
    end
    return path
end

fdnumber(x::Integer) = Cint(x)
fdnumber(x) = reinterpret(Cint, x)     # RawFD on newer Julia

writedata(io::IO, data::AbstractVector{UInt8}) = write(io, data)
writedata(io::IO, data::AbstractString) = write(io, data)
writedata(io::IO, data::IO) = write(io, read(data))
writedata(io::IO, data) = throw(ArgumentError(
    "cannot write a $(typeof(data)); pass bytes (Vector{UInt8}), a string or an IO"))

"`relpath` joined to `base`, refusing absolute paths and `..` (which could leave `base`)."
function blockpath(base::AbstractString, relpath::AbstractString)
    isempty(relpath) && throw(ArgumentError("an empty path cannot be read or written"))
    isabspath(relpath) && throw(ArgumentError("\"$relpath\" is absolute; give a path relative to the block's basepath"))
    any(==(".."), splitpath(relpath)) && throw(ArgumentError("\"$relpath\" contains \"..\"; stay inside the block's basepath"))
    return joinpath(expanduser(base), relpath)
end

"""
    abspath(block::LocalFSBlock, relpath) -> String

Absolute path of `relpath` under the block's `basepath`.
"""
Base.abspath(b::LocalFSBlock, relpath::AbstractString) = abspath(blockpath(b.basepath, relpath))

"""
    read(block::LocalFSBlock, relpath) -> Vector{UInt8}
    read(block::LocalFSBlock, relpath, String) -> String

Read the file `relpath` under the block's basepath.
"""
Base.read(b::LocalFSBlock, relpath::AbstractString) = read(abspath(b, relpath))
Base.read(b::LocalFSBlock, relpath::AbstractString, ::Type{String}) = read(abspath(b, relpath), String)

"""
    write(block::LocalFSBlock, relpath, data) -> String

Atomically write `data` (bytes, a string or an `IO`) to `relpath` under the block's basepath, creating
folders; returns the absolute path.
"""
Base.write(b::LocalFSBlock, relpath::AbstractString, data) = atomicwrite(abspath(b, relpath), data)
