# Files of a block by relative path, as bytes or (where DataFrames and CSV are loaded) as tables.
#
# The DataFrames/CSV package extension (ext/PrefectInterfacesDataFramesExt.jl, Julia 1.9+) fills TABLES
# when both packages are loaded; without it, reads give bytes and writes take bytes, strings or IO.

"How a loaded table package reads and writes CSV: the table type, `bytes -> table`, `table -> bytes`."
struct TableIO
    type::Type
    read::Function
    write::Function
end

const TABLES = Ref{Union{Nothing,TableIO}}(nothing)

"Bytes, a string or an IO pass as they are; a table of the loaded table package becomes CSV bytes."
function payload(data)
    data isa Union{AbstractVector{UInt8},AbstractString,IO} && return data
    t = TABLES[]
    t !== nothing && data isa t.type && return t.write(data)
    throw(ArgumentError("cannot write a $(typeof(data)); pass bytes (Vector{UInt8}), a string or an IO" *
                        (t === nothing ? " (tables need DataFrames and CSV loaded, on Julia 1.9 or later)" : "")))
end

"CSV bytes as a table when a table package is loaded, else the bytes themselves."
astable(bytes::Vector{UInt8}) = (t = TABLES[]; t === nothing ? bytes : t.read(bytes))

# Any block without file access: a clear error naming the block and its type.
unsupported(b, operation) = throw(UnsupportedBlockError(b.blockname, blockslug(b), operation))
blockslug(b::GenericBlock) = getfield(b, :slug)
blockslug(b::AbstractPrefectBlock) = hasfield(typeof(b), :blocktype) ? getfield(b, :blocktype) : string(typeof(b))

Base.read(b::AbstractPrefectBlock, relpath::AbstractString) = unsupported(b, "read")
Base.write(b::AbstractPrefectBlock, relpath::AbstractString, data) = unsupported(b, "write")
Base.read(b::PrefectBlock, relpath::AbstractString) = read(unwrap(b), relpath)
Base.read(b::PrefectBlock, relpath::AbstractString, ::Type{String}) = String(read(unwrap(b), relpath))
Base.write(b::PrefectBlock, relpath::AbstractString, data) = write(unwrap(b), relpath, data)
Base.abspath(b::PrefectBlock, relpath::AbstractString) = abspath(unwrap(b), relpath)

"""
    read_path(block, relpath) -> DataFrame or Vector{UInt8}
    block.read_path(relpath)

Read the file `relpath` of a file-like block ([`LocalFSBlock`](@ref); an [`S3BucketBlock`](@ref) where S3
access is available): a `DataFrame` (by `CSV.read`) when DataFrames and CSV are loaded (Julia 1.9+),
else the bytes.
"""
read_path(b::AbstractPrefectBlock, relpath::AbstractString) = astable(read(unwrap(b), relpath))

"""
    write_path(block, relpath, data) -> String
    block.write_path(relpath, data)

Write `data` (a `DataFrame` when DataFrames and CSV are loaded, or bytes, a string or an `IO`) to
`relpath` of a file-like block, atomically; returns the absolute path (or `s3://` URL) written.
"""
write_path(b::AbstractPrefectBlock, relpath::AbstractString, data) = write(unwrap(b), relpath, payload(data))
