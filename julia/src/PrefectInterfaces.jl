"""
    PrefectInterfaces

Blocks, variables and datasets from the Prefect API, for Julia jobs started by Prefect flows. Standard
library only. The API URL comes from `PREFECT_API_URL`; see [`PrefectAPI`](@ref), [`PrefectBlock`](@ref),
[`getvariable`](@ref), [`ls`](@ref), [`Dataset`](@ref), [`parseargs`](@ref) and [`setresult`](@ref).
"""
module PrefectInterfaces

using Base64: base64encode
using Dates: Dates, Date, @dateformat_str
using DelimitedFiles: readdlm, writedlm
using Logging: Logging, AbstractLogger, LogLevel, global_logger

const USE_DOWNLOADS = VERSION >= v"1.6"
@static if USE_DOWNLOADS
    import Downloads
end

export PrefectAPI, PrefectBlock, LocalFSBlock, SecretBlock, AWSCredentialsBlock, S3BucketBlock, GenericBlock,
       SecretValue, secretvalue, getvariable, ls,
       Dataset, dated_path, latest_path, read_path, write_paths, datasetpath, datastore_block, readcsv, writecsv,
       parsejson, json, writejson, parseargs, setresult, PrefectLogger,
       PrefectInterfacesError, PrefectConnectionError, PrefectAPIError, UnauthorizedError, BlockNotFoundError,
       MalformedBlockNameError, VariableNotFoundError, MissingEnvError, DatasetError, ArgumentsError,
       UnsupportedBlockError, JSONError

include("errors.jl")
include("json.jl")
include("secrets.jl")
include("http.jl")
include("api.jl")
include("blocks.jl")
include("variables.jl")
include("files.jl")
include("dataset.jl")
include("bridge.jl")
include("logging.jl")

function __init__()
    if get(ENV, "PREFECT_JULIA_LOG_FORMAT", "") == "prefect"
        global_logger(PrefectLogger())
    end
end

end # module
