# Datasets: named files in a datastore block, laid out by type, format and run date.
#
#   {dataset_type}/{file_format}/dataset={name}/rundate={yyyy-mm-dd}/data.{ext}     (dated)
#   {dataset_type}/{file_format}/latest/dataset={name}/data.{ext}                   (latest)

const DATASTORE_TYPES = ("local", "remote")
const DATASET_TYPES = ("extracts", "reports", "images")
const RUNDATE_TYPES = ("latest", "specific")
const DATASTORE_BLOCK_ENV = Dict("local" => "PREFECT_DATA_BLOCK_LOCAL", "remote" => "PREFECT_DATA_BLOCK_REMOTE")
# The base environment's local datastore folder a read falls back to, and that environment's name (for the log).
const FALLBACK_ROOT_ENV = "PREFECT_DATA_FALLBACK_ROOT"
const FALLBACK_NAME_ENV = "PREFECT_DATA_FALLBACK_NAME"

"""
    Dataset(; dataset_name, datastore_type=nothing, dataset_type="extracts", file_format="csv",
            rundate=nothing, rundate_type=nothing, today=Dates.today(), env=ENV)
    Dataset(dataset_name; kwargs...)

A dataset in a datastore (also `Datasets.Dataset`, as in PrefectInterfaces.jl). Defaults:
- `datastore_type`: `"local"` or `"remote"`, from `PREFECT_DATASTORE_DEFAULT_TYPE`, else `"local"`;
- `dataset_type`: `"extracts"`, `"reports"` or `"images"`;
- `file_format`: `"csv"` or any other extension (letters and digits);
- `rundate`: a `Date` or `"yyyy-mm-dd"`, default `today`;
- `rundate_type`: `"latest"` when `rundate == today`, else `"specific"`.

Reading and writing ([`read`](@ref), [`write`](@ref), [`readcsv`](@ref), [`writecsv`](@ref)):
`latest` on today reads the latest file and writes both the dated and the latest file; `latest` on
another day reads and writes the latest file only; `specific` reads and writes the dated file.
The datastore's block name comes from `PREFECT_DATA_BLOCK_LOCAL` or `PREFECT_DATA_BLOCK_REMOTE`; the
block is loaded once and reused by the dataset operations of the next minute (see [`datastore_block`](@ref)).

In an environment with a base (a branch environment based on dev), `PREFECT_DATA_FALLBACK_ROOT` names the
base's local datastore folder and `PREFECT_DATA_FALLBACK_NAME` the base: a read of the `local` datastore (a
local-file-system block) that finds no file in its own store reads the base's file and logs
`Dataset "NAME" read from dev's data: PATH`; writes go to the own store only, and [`rundates`](@ref) lists
both stores' rundates. A `remote` datastore, or an s3-bucket block, never falls back.

Besides its fields, a dataset answers `ds.dataset_path` (the dated path), `ds.latest_path` and
`ds.image_path` (`{dataset_type}/dataset={name}/rundate={yyyy-mm-dd}`). It prints as the call that makes it.

A name containing `/`, `\\`, `..` or `=`, or an empty one, raises [`DatasetError`](@ref) (as does any
other invalid field; the error names the field).
"""
struct Dataset <: AbstractPrefectInterface
    dataset_name::String
    datastore_type::String
    dataset_type::String
    file_format::String
    rundate::Date
    rundate_type::String
    today::Date
end

function Dataset(; dataset_name::AbstractString, datastore_type=nothing, dataset_type="extracts",
                 file_format="csv", rundate=nothing, rundate_type=nothing,
                 today::Union{Date,AbstractString}=Dates.today(), env::AbstractDict=ENV)
    name = String(dataset_name)
    (isempty(name) || occursin('/', name) || occursin('\\', name) || occursin("..", name) || occursin('=', name) ||
     any(iscntrl, name)) &&
        throw(DatasetError("dataset_name", name,
            "a dataset name must be non-empty and free of '/', '\\', '..', '=' and control characters, e.g. \"iris\"."))

    if datastore_type === nothing
        dt = get(env, "PREFECT_DATASTORE_DEFAULT_TYPE", "")
        store = isempty(dt) ? "local" : String(dt)
        store in DATASTORE_TYPES || throw(DatasetError("datastore_type", store,
            "PREFECT_DATASTORE_DEFAULT_TYPE must be \"local\" or \"remote\"."))
    else
        store = String(datastore_type)
        store in DATASTORE_TYPES || throw(DatasetError("datastore_type", store, "use \"local\" or \"remote\"."))
    end

    dtype = String(dataset_type)
    dtype in DATASET_TYPES || throw(DatasetError("dataset_type", dtype, "use one of $(join(DATASET_TYPES, ", "))."))

    fmt = String(file_format)
    occursin(r"^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$", fmt) ||
        throw(DatasetError("file_format", fmt, "a file format is a file extension of letters and digits, e.g. \"csv\"."))

    today = today isa Date ? today : parsedate("today", String(today))
    date = if rundate === nothing
        today
    elseif rundate isa Date
        rundate
    else
        parsedate("rundate", String(rundate))
    end

    rtype = if rundate_type === nothing
        date == today ? "latest" : "specific"
    else
        r = String(rundate_type)
        r in RUNDATE_TYPES || throw(DatasetError("rundate_type", r, "use \"latest\" or \"specific\"."))
        r
    end
    return Dataset(name, store, dtype, fmt, date, rtype, today)
end

function parsedate(field::String, s::String)
    d = occursin(r"^\d{4}-\d{2}-\d{2}$", s) ? tryparse(Date, s, dateformat"yyyy-mm-dd") : nothing
    d === nothing && throw(DatasetError(field, s, "write the date as yyyy-mm-dd, e.g. \"2026-11-21\"."))
    return d
end

Dataset(dataset_name::AbstractString; kwargs...) = Dataset(; dataset_name=dataset_name, kwargs...)

const DATASET_PROPERTIES = (:dataset_path, :latest_path, :image_path)

function Base.getproperty(ds::Dataset, name::Symbol)
    name === :dataset_path && return dated_path(ds)
    name === :latest_path && return latest_path(ds)
    name === :image_path && return image_path(ds)
    return getfield(ds, name)
end
Base.propertynames(ds::Dataset, private::Bool=false) = (fieldnames(Dataset)..., DATASET_PROPERTIES...)

datestring(d::Date) = Dates.format(d, dateformat"yyyy-mm-dd")

function Base.show(io::IO, ds::Dataset)
    print(io, "Dataset(dataset_name=")
    show(io, ds.dataset_name)
    for f in (:datastore_type, :dataset_type, :file_format)
        print(io, ", ", f, "=")
        show(io, getfield(ds, f))
    end
    print(io, ", rundate=\"", datestring(ds.rundate), "\", rundate_type=")
    show(io, ds.rundate_type)
    print(io, ", today=\"", datestring(ds.today), "\")")
end

"""
    dated_path(ds::Dataset) -> String

`{dataset_type}/{file_format}/dataset={name}/rundate={yyyy-mm-dd}/data.{ext}`, relative to the datastore.
"""
dated_path(ds::Dataset) = string(ds.dataset_type, "/", ds.file_format, "/dataset=", ds.dataset_name,
                                 "/rundate=", Dates.format(ds.rundate, dateformat"yyyy-mm-dd"), "/data.", ds.file_format)

"""
    latest_path(ds::Dataset) -> String

`{dataset_type}/{file_format}/latest/dataset={name}/data.{ext}`, relative to the datastore.
"""
latest_path(ds::Dataset) = string(ds.dataset_type, "/", ds.file_format, "/latest/dataset=", ds.dataset_name,
                                  "/data.", ds.file_format)

"`{dataset_type}/dataset={name}/rundate={yyyy-mm-dd}`: where a dataset's images go (as `ds.image_path`)."
image_path(ds::Dataset) = string(ds.dataset_type, "/dataset=", ds.dataset_name, "/rundate=", datestring(ds.rundate))

"""
    read_path(ds::Dataset) -> String

The relative path a read uses: the latest file for `rundate_type == "latest"`, else the dated file.
"""
read_path(ds::Dataset) = ds.rundate_type == "latest" ? latest_path(ds) : dated_path(ds)

"""
    write_paths(ds::Dataset) -> Vector{String}

The relative paths a write replaces: dated and latest (latest on today), latest only (latest on another
day), or the dated file (specific).
"""
function write_paths(ds::Dataset)
    ds.rundate_type == "specific" && return [dated_path(ds)]
    return ds.rundate == ds.today ? [dated_path(ds), latest_path(ds)] : [latest_path(ds)]
end

"""
    Datasets.rundate_path_selector(ds::Dataset) -> (read=String, write=Vector{String})

The relative path a read uses and the paths a write replaces, in the order [`write`](@ref) writes and
returns them (latest first), as in PrefectInterfaces.jl.
"""
function rundate_path_selector(ds::Dataset)
    w = write_paths(ds)
    return (read=read_path(ds), write=length(w) == 2 ? [w[2], w[1]] : w)
end

"""
    datastore_block(ds::Dataset; api=nothing, env=ENV) -> PrefectBlock

The block of the dataset's datastore, named by `PREFECT_DATA_BLOCK_LOCAL` or `PREFECT_DATA_BLOCK_REMOTE`
(only the variable of the datastore type in use is needed). The block is fetched once and reused for
`BLOCK_CACHE_SECONDS[]` seconds (60; 0 turns the cache off) by every dataset operation of the process;
an operation that fails drops it, so the next one fetches it again.
"""
function datastore_block(ds::Dataset; api::Union{Nothing,PrefectAPI}=nothing, env::AbstractDict=ENV)
    var = DATASTORE_BLOCK_ENV[ds.datastore_type]
    name = get(env, var, "")
    isempty(name) && throw(MissingEnvError(var,
        "It names the block of the $(ds.datastore_type) datastore, e.g. $var=local-file-system/willowdata."))
    return cachedblock(something(api, PrefectAPI(; env=env)), String(name))
end

"""
    Datasets.block_selector(ds::Dataset) -> PrefectBlock

The block of the dataset's datastore, as in PrefectInterfaces.jl; see [`datastore_block`](@ref).
"""
block_selector(ds::Dataset) = datastore_block(ds)

"Seconds a datastore block fetched for dataset operations is reused (0 turns the cache off)."
const BLOCK_CACHE_SECONDS = Ref(60.0)
const BLOCK_CACHE = Dict{Tuple{String,String,UInt},Tuple{Float64,PrefectBlock}}()
const BLOCK_CACHE_LOCK = ReentrantLock()

blockcachekey(api::PrefectAPI, name::String) = (api.url, name, hash(secretvalue(api.key)))

function cachedblock(api::PrefectAPI, name::String)
    key = blockcachekey(api, name)
    hit = lock(() -> get(BLOCK_CACHE, key, nothing), BLOCK_CACHE_LOCK)
    if hit !== nothing && time() - hit[1] < BLOCK_CACHE_SECONDS[]
        return hit[2]
    end
    block = PrefectBlock(name; api=api)
    BLOCK_CACHE_SECONDS[] > 0 && lock(() -> BLOCK_CACHE[key] = (time(), block), BLOCK_CACHE_LOCK)
    return block
end

"Forget every cached datastore block (the next dataset operation fetches its block again)."
clear_block_cache!() = lock(() -> empty!(BLOCK_CACHE), BLOCK_CACHE_LOCK)

# Run a dataset operation on its block: the given one, else the (cached) datastore block, which is dropped
# from the cache when the operation fails.
function withblock(f, ds::Dataset, block, api, env)
    block === nothing || return f(unwrap(block))
    b = datastore_block(ds; api=api, env=env)
    try
        return f(unwrap(b))
    catch
        name = b.blockname
        lock(BLOCK_CACHE_LOCK) do
            for k in collect(keys(BLOCK_CACHE))
                k[2] == name && delete!(BLOCK_CACHE, k)
            end
        end
        rethrow()
    end
end

"""
    Datasets.fallbackroot(ds::Dataset, b, env) -> Union{Nothing,String}

The base's datastore folder (`PREFECT_DATA_FALLBACK_ROOT`) a read of `ds` in block `b` falls back to:
only for the `local` datastore of a local-file-system block, and only when it is another folder.
"""
function fallbackroot(ds::Dataset, b, env::AbstractDict)
    (ds.datastore_type == "local" && b isa LocalFSBlock) || return nothing
    raw = strip(get(env, FALLBACK_ROOT_ENV, ""))
    isempty(raw) && return nothing
    root = expanduser(String(raw))
    isabspath(root) || throw(ArgumentError("$FALLBACK_ROOT_ENV=\"$raw\" is not an absolute folder: set it to the " *
                                           "base environment's datastore folder, or leave it empty."))
    samefolder(root, expanduser(b.basepath)) && return nothing
    return root
end

samefolder(a, b) = (ispath(a) && ispath(b)) ? realpath(a) == realpath(b) : normpath(abspath(a)) == normpath(abspath(b))

fallbackname(env::AbstractDict) = (n = strip(get(env, FALLBACK_NAME_ENV, "")); isempty(n) ? "the base environment" : String(n))

# The base's file a read of `rel` uses when the own store has none (logged), else nothing.
function fallbackfile(ds::Dataset, b, rel::String, env::AbstractDict)
    root = fallbackroot(ds, b, env)
    (root === nothing || isfile(abspath(b, rel))) && return nothing
    path = joinpath(root, rel)
    isfile(path) || return nothing
    @info "Dataset \"$(ds.dataset_name)\" read from $(fallbackname(env))'s data: $path (not in this environment's store)"
    return path
end

"The rundates stored for `ds` in a local-file-system block, and in the base's store too when `fallback`."
function localrundates(ds::Dataset, b::LocalFSBlock, env::AbstractDict; fallback::Bool=true)
    dir = string(ds.dataset_type, "/", ds.file_format, "/dataset=", ds.dataset_name)
    data = "data." * ds.file_format
    root = fallback ? fallbackroot(ds, b, env) : nothing
    found = String[]
    for folder in (abspath(b, dir), root === nothing ? nothing : joinpath(root, dir))
        (folder === nothing || !isdir(folder)) && continue
        for name in readdir(folder)
            startswith(name, "rundate=") && isfile(joinpath(folder, name, data)) && push!(found, name[9:end])
        end
    end
    return found
end

"""
    datasetpath(ds::Dataset; which=:read, block=nothing, api=nothing, env=ENV) -> String

Absolute location of the dataset's file for readers and writers of your own (CSV.jl, DataFrames.jl...):
`which` is `:read` (the file a read uses: the base's when only the base has it, see [`Dataset`](@ref)),
`:dated` or `:latest` (always the own store). A path under the basepath of a local-file-system block, or
`s3://bucket/folder/...` for an s3-bucket block. Writing to it yourself is
not atomic; prefer [`write`](@ref) when you can produce bytes.
"""
function datasetpath(ds::Dataset; which::Symbol=:read, block=nothing, api=nothing, env::AbstractDict=ENV)
    rel = which === :read ? read_path(ds) : which === :dated ? dated_path(ds) : which === :latest ? latest_path(ds) :
          throw(ArgumentError("which must be :read, :dated or :latest"))
    return withblock(ds, block, api, env) do b
        if b isa S3BucketBlock
            folder = strip(b.bucket_folder, '/')
            return string("s3://", b.bucket_name, "/", isempty(folder) ? "" : folder * "/", rel)
        end
        b isa LocalFSBlock || unsupported(b, "a file path")
        base = which === :read ? fallbackfile(ds, b, rel, env) : nothing
        return base === nothing ? abspath(b, rel) : base
    end
end

"""
    read(ds::Dataset; block=nothing, api=nothing, env=ENV) -> DataFrame or Vector{UInt8}
    read(ds::Dataset, String; ...) -> String
    read(ds::Dataset, Vector{UInt8}; ...) -> Vector{UInt8}

Read the dataset's file (see [`read_path`](@ref)) from its datastore block, or from the base's store
when only the base has it (see [`Dataset`](@ref)). A CSV dataset reads as a
`DataFrame` when DataFrames and CSV are loaded (Julia 1.9+, as in PrefectInterfaces.jl), else as bytes.
`block` may be a [`PrefectBlock`](@ref) or a typed block (e.g. a [`LocalFSBlock`](@ref) on no server).
"""
function Base.read(ds::Dataset; kwargs...)
    bytes = read(ds, Vector{UInt8}; kwargs...)
    return ds.file_format == "csv" ? astable(bytes) : bytes
end
function Base.read(ds::Dataset, ::Type{Vector{UInt8}}; block=nothing, api=nothing, env::AbstractDict=ENV)
    return withblock(ds, block, api, env) do b
        base = fallbackfile(ds, b, read_path(ds), env)
        base === nothing ? read(b, read_path(ds)) : read(base)     # the base's store is only ever read
    end
end
Base.read(ds::Dataset, ::Type{String}; kwargs...) = String(read(ds, Vector{UInt8}; kwargs...))

"""
    write(ds::Dataset, data; block=nothing, api=nothing, env=ENV) -> Vector{String}

Atomically write `data` (bytes, a string, an `IO`, or a `DataFrame` when DataFrames and CSV are loaded)
to every path of [`write_paths`](@ref) in the datastore block, the dated file before the latest one (so
`latest` never holds data that has no dated copy); returns the absolute paths written, latest first (the
order of `Datasets.rundate_path_selector`, as in PrefectInterfaces.jl). A failed write leaves the previous
files intact.
"""
function Base.write(ds::Dataset, data; block=nothing, api=nothing, env::AbstractDict=ENV)
    bytes = payload(data)
    bytes = bytes isa IO ? read(bytes) : bytes
    return withblock(ds, block, api, env) do b
        written = String[write(b, p, bytes) for p in write_paths(ds)]
        reverse!(written)
    end
end

"""
    Datasets.PrefectDatastoreNames(remote, local, default="local")
    Datasets.PrefectDatastoreNames(; env=ENV)

The names of the blocks of the remote and local datastores and the default datastore type, as in
PrefectInterfaces.jl; the keyword form reads `PREFECT_DATA_BLOCK_REMOTE`, `PREFECT_DATA_BLOCK_LOCAL`
and `PREFECT_DATASTORE_DEFAULT_TYPE` (default `"local"`), raising [`MissingEnvError`](@ref) for a
missing block name.
"""
mutable struct PrefectDatastoreNames <: AbstractPrefectInterface
    remote::String
    var"local"::String
    default::String
end

PrefectDatastoreNames(remote::AbstractString, localname::AbstractString; env::AbstractDict=ENV) =
    PrefectDatastoreNames(remote, localname, defaultstore(env))

function PrefectDatastoreNames(; env::AbstractDict=ENV)
    for var in ("PREFECT_DATA_BLOCK_REMOTE", "PREFECT_DATA_BLOCK_LOCAL")
        isempty(get(env, var, "")) && throw(MissingEnvError(var,
            "PrefectDatastoreNames() reads the block names of both datastores, e.g. $var=local-file-system/willowdata; " *
            "pass them as PrefectDatastoreNames(remote, local) instead."))
    end
    return PrefectDatastoreNames(env["PREFECT_DATA_BLOCK_REMOTE"], env["PREFECT_DATA_BLOCK_LOCAL"], defaultstore(env))
end

defaultstore(env) = (d = get(env, "PREFECT_DATASTORE_DEFAULT_TYPE", ""); isempty(d) ? "local" : String(d))

"""
    readcsv(ds::Dataset; header=true, block=nothing, api=nothing, env=ENV) -> (data, header)

Read the dataset as CSV with `DelimitedFiles.readdlm` (quoted fields allowed): `data` is a `Matrix{Any}`
of numbers and strings, `header` a `Vector{String}` (empty when `header=false`).
"""
function readcsv(ds::Dataset; header::Bool=true, kwargs...)
    io = IOBuffer(read(ds, Vector{UInt8}; kwargs...))
    if header
        data, hdr = readdlm(io, ',', Any, '\n'; header=true, quotes=true)
        return data, String[string(h) for h in vec(hdr)]
    end
    return readdlm(io, ',', Any, '\n'; quotes=true), String[]
end

"""
    writecsv(ds::Dataset, data::AbstractMatrix; header=nothing, block=nothing, api=nothing, env=ENV)

Write a matrix (with an optional header row) as CSV to the dataset, atomically (see [`write`](@ref));
fields holding commas, quotes or newlines are quoted. Returns the absolute paths written.
"""
function writecsv(ds::Dataset, data::AbstractMatrix; header=nothing, kwargs...)
    io = IOBuffer()
    cells = map(csvcell, data)
    if header !== nothing
        length(header) == size(data, 2) ||
            throw(ArgumentError("header has $(length(header)) names for $(size(data, 2)) columns"))
        writedlm(io, permutedims(map(csvcell, collect(header))), ',')
    end
    writedlm(io, cells, ',')
    return write(ds, take!(io); kwargs...)
end

# writedlm quotes fields holding the delimiter, quotes or newlines itself; missing values become empty.
csvcell(x) = x === nothing || x === missing ? "" : x
