"""
    PrefectInterfaces

Blocks, variables and datasets from the Prefect API, for Julia jobs started by Prefect flows. Standard
library only. The API URL comes from `PREFECT_API_URL`; see [`PrefectAPI`](@ref), [`PrefectBlock`](@ref),
[`getvariable`](@ref), [`ls`](@ref), [`Dataset`](@ref), [`parseargs`](@ref) and [`setresult`](@ref).
The API of PrefectInterfaces.jl works too (see MIGRATING.md); with DataFrames and CSV loaded (Julia 1.9+),
datasets and file blocks read and write DataFrames.
"""
module PrefectInterfaces

using Base64: base64encode
using Dates: Dates, Date, @dateformat_str
using DelimitedFiles: readdlm, writedlm
using Logging: Logging, AbstractLogger, LogLevel, global_logger
using SHA: sha256, hmac_sha256

const USE_DOWNLOADS = VERSION >= v"1.6"

export AbstractPrefectInterface, AbstractPrefectBlock,
       PrefectAPI, PrefectBlock, LocalFSBlock, SecretBlock, AWSCredentialsBlock, S3BucketBlock, StringBlock,
       CredentialPairBlock, GenericBlock, SecretString, SecretValue, secretvalue, getvariable, ls, getblock, makeblock,
       Dataset, dated_path, latest_path, read_path, write_path, write_paths, datasetpath, datastore_block,
       readcsv, writecsv,
       parsejson, json, writejson, parseargs, setresult, PrefectLogger,
       PrefectInterfacesError, PrefectConnectionError, PrefectAPIError, UnauthorizedError, BlockNotFoundError,
       MalformedBlockNameError, VariableNotFoundError, MissingEnvError, DatasetError, ArgumentsError,
       UnsupportedBlockError, JSONError, S3Error, rundates

include("types.jl")
include("errors.jl")
include("json.jl")
include("secrets.jl")
include("http.jl")
include("api.jl")
include("csrf.jl")
include("blocks.jl")
include("variables.jl")
include("files.jl")
include("tables.jl")
include("dataset.jl")
include("s3.jl")
include("bridge.jl")
include("logging.jl")

"""
    PrefectInterfaces.Datasets

The dataset names of PrefectInterfaces.jl: [`Dataset`](@ref), `PrefectDatastoreNames`,
`rundate_path_selector` and `block_selector` (`using PrefectInterfaces.Datasets`).
"""
module Datasets
import Base: read, write
using ..PrefectInterfaces: Dataset, PrefectDatastoreNames, rundate_path_selector, block_selector
export Dataset, PrefectDatastoreNames, rundate_path_selector
end

function __init__()
    if get(ENV, "PREFECT_JULIA_LOG_FORMAT", "") == "prefect"
        global_logger(PrefectLogger())
    end
end

end # module
