# DataFrames and CSV for PrefectInterfaces (Julia 1.9+ package extension, loaded when both packages are):
# `read(ds)` and `block.read_path(p)` return a DataFrame, `write(ds, df)` and `block.write_path(p, df)`
# take one, as in PrefectInterfaces.jl. Files are CSV, written through the package's atomic writes.
module PrefectInterfacesDataFramesExt

using PrefectInterfaces: PrefectInterfaces, Dataset
using CSV: CSV
using DataFrames: DataFrame, AbstractDataFrame

readtable(bytes::Vector{UInt8}) = CSV.read(IOBuffer(bytes), DataFrame)

function tablebytes(df::AbstractDataFrame)
    io = IOBuffer()
    CSV.write(io, df)
    return take!(io)
end

"`read(ds, DataFrame)`: the dataset as a DataFrame, whatever its file format's extension (CSV content)."
Base.read(ds::Dataset, ::Type{DataFrame}; kwargs...) = readtable(read(ds, Vector{UInt8}; kwargs...))

function __init__()
    PrefectInterfaces.TABLES[] = PrefectInterfaces.TableIO(AbstractDataFrame, readtable, tablebytes)
end

end # module
