# Datasets: named files in a datastore block, laid out by type, format and run date.
#
#   {dataset_type}/{file_format}/dataset={name}/rundate={yyyy-mm-dd}/data.{ext}     (dated)
#   {dataset_type}/{file_format}/latest/dataset={name}/data.{ext}                   (latest)

const DATASTORE_TYPES = ("local", "remote")
const DATASET_TYPES = ("extracts", "reports", "images")
const RUNDATE_TYPES = ("latest", "specific")
const DATASTORE_BLOCK_ENV = Dict("local" => "PREFECT_DATA_BLOCK_LOCAL", "remote" => "PREFECT_DATA_BLOCK_REMOTE")

"""
    Dataset(; dataset_name, datastore_type=nothing, dataset_type="extracts", file_format="csv",
            rundate=nothing, rundate_type=nothing, today=Dates.today(), env=ENV)
    Dataset(dataset_name; kwargs...)

A dataset in a datastore. Defaults:
- `datastore_type`: `"local"` or `"remote"`, from `PREFECT_DATASTORE_DEFAULT_TYPE`, else `"local"`;
- `dataset_type`: `"extracts"`, `"reports"` or `"images"`;
- `file_format`: `"csv"` or any other extension (letters and digits);
- `rundate`: a `Date` or `"yyyy-mm-dd"`, default `today`;
- `rundate_type`: `"latest"` when `rundate == today`, else `"specific"`.

Reading and writing ([`read`](@ref), [`write`](@ref), [`readcsv`](@ref), [`writecsv`](@ref)):
`latest` on today reads the latest file and writes both the dated and the latest file; `latest` on
another day reads and writes the latest file only; `specific` reads and writes the dated file.
The datastore's block name comes from `PREFECT_DATA_BLOCK_LOCAL` or `PREFECT_DATA_BLOCK_REMOTE`.

A name containing `/`, `\\`, `..` or `=`, or an empty one, raises [`DatasetError`](@ref) (as does any
other invalid field; the error names the field).
"""
struct Dataset
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
                 today::Date=Dates.today(), env::AbstractDict=ENV)
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

    date = if rundate === nothing
        today
    elseif rundate isa Date
        rundate
    else
        s = String(rundate)
        d = occursin(r"^\d{4}-\d{2}-\d{2}$", s) ? tryparse(Date, s, dateformat"yyyy-mm-dd") : nothing
        d === nothing && throw(DatasetError("rundate", s, "write the run date as yyyy-mm-dd, e.g. \"2026-11-21\"."))
        d
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

Dataset(dataset_name::AbstractString; kwargs...) = Dataset(; dataset_name=dataset_name, kwargs...)

function Base.show(io::IO, ds::Dataset)
    print(io, "Dataset(\"", ds.dataset_name, "\", ", ds.datastore_type, ", ", ds.dataset_type, ", ", ds.file_format,
          ", ", ds.rundate, ", ", ds.rundate_type, ")")
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
    datastore_block(ds::Dataset; api=nothing, env=ENV) -> PrefectBlock

The block of the dataset's datastore, named by `PREFECT_DATA_BLOCK_LOCAL` or `PREFECT_DATA_BLOCK_REMOTE`
(only the variable of the datastore type in use is needed).
"""
function datastore_block(ds::Dataset; api::Union{Nothing,PrefectAPI}=nothing, env::AbstractDict=ENV)
    var = DATASTORE_BLOCK_ENV[ds.datastore_type]
    name = get(env, var, "")
    isempty(name) && throw(MissingEnvError(var,
        "It names the block of the $(ds.datastore_type) datastore, e.g. $var=local-file-system/willowdata."))
    return PrefectBlock(name; api=something(api, PrefectAPI(; env=env)))
end

resolveblock(ds, block, api, env) = block === nothing ? datastore_block(ds; api=api, env=env) : block

function localblock(ds::Dataset, block::PrefectBlock, operation::String)
    block isa LocalFSBlock && return block
    slug = block isa GenericBlock ? block.slug : block isa S3BucketBlock ? "s3-bucket" :
           block isa SecretBlock ? "secret" : block isa AWSCredentialsBlock ? "aws-credentials" : string(typeof(block))
    throw(UnsupportedBlockError(block.blockname, slug, operation))
end

"""
    datasetpath(ds::Dataset; which=:read, block=nothing, api=nothing, env=ENV) -> String

Absolute location of the dataset's file for readers and writers of your own (CSV.jl, DataFrames.jl...):
`which` is `:read` (the file a read uses), `:dated` or `:latest`. A path under the basepath of a
local-file-system block, or `s3://bucket/folder/...` for an s3-bucket block. Writing to it yourself is
not atomic; prefer [`write`](@ref) when you can produce bytes.
"""
function datasetpath(ds::Dataset; which::Symbol=:read, block=nothing, api=nothing, env::AbstractDict=ENV)
    rel = which === :read ? read_path(ds) : which === :dated ? dated_path(ds) : which === :latest ? latest_path(ds) :
          throw(ArgumentError("which must be :read, :dated or :latest"))
    b = resolveblock(ds, block, api, env)
    if b isa S3BucketBlock
        folder = strip(b.bucket_folder, '/')
        return string("s3://", b.bucket_name, "/", isempty(folder) ? "" : folder * "/", rel)
    end
    return abspath(localblock(ds, b, "a file path"), rel)
end

"""
    read(ds::Dataset; block=nothing, api=nothing, env=ENV) -> Vector{UInt8}
    read(ds::Dataset, String; ...) -> String

Read the dataset's file (see [`read_path`](@ref)) from its datastore block (a local-file-system block).
"""
Base.read(ds::Dataset; block=nothing, api=nothing, env::AbstractDict=ENV) =
    read(localblock(ds, resolveblock(ds, block, api, env), "read"), read_path(ds))
Base.read(ds::Dataset, ::Type{String}; kwargs...) = String(read(ds; kwargs...))

"""
    write(ds::Dataset, data; block=nothing, api=nothing, env=ENV) -> Vector{String}

Atomically write `data` (bytes, a string or an `IO`) to every path of [`write_paths`](@ref) in the
datastore block; returns the absolute paths written. A failed write leaves the previous files intact.
"""
function Base.write(ds::Dataset, data; block=nothing, api=nothing, env::AbstractDict=ENV)
    b = localblock(ds, resolveblock(ds, block, api, env), "write")
    bytes = data isa IO ? read(data) : data
    return [write(b, p, bytes) for p in write_paths(ds)]
end

"""
    readcsv(ds::Dataset; header=true, block=nothing, api=nothing, env=ENV) -> (data, header)

Read the dataset as CSV with `DelimitedFiles.readdlm` (quoted fields allowed): `data` is a `Matrix{Any}`
of numbers and strings, `header` a `Vector{String}` (empty when `header=false`).
"""
function readcsv(ds::Dataset; header::Bool=true, kwargs...)
    io = IOBuffer(read(ds; kwargs...))
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
