# Typed errors. Every message says what went wrong and what to do about it, and never holds a secret.

"""
    PrefectInterfacesError

Root of every expected failure raised by PrefectInterfaces. Catch this to handle all of them at once;
`showerror` of each subtype names the fix.
"""
abstract type PrefectInterfacesError <: Exception end

"""
    PrefectConnectionError(url, reason, seconds=0.0)

The Prefect API at `url` could not be reached (connection refused, unknown host, timeout), though tried
again for `seconds` (see `PREFECT_JULIA_API_PATIENCE`).
"""
struct PrefectConnectionError <: PrefectInterfacesError
    url::String
    reason::String
    seconds::Float64
end

PrefectConnectionError(url::AbstractString, reason::AbstractString) = PrefectConnectionError(url, reason, 0.0)

function Base.showerror(io::IO, e::PrefectConnectionError)
    print(io, "PrefectConnectionError: cannot reach the Prefect server at ", redact_url(e.url), " (", e.reason)
    e.seconds >= 1 && print(io, "; tried for ", round(Int, e.seconds), " s")
    print(io, "). Start it with `invoke server-up ENV` (ENV: the environment, e.g. dev), or set PREFECT_API_URL ",
          "to the URL of a running one; PREFECT_JULIA_API_PATIENCE says how long a job waits for it.")
end

"""
    PrefectAPIError(method, url, status, detail)

The Prefect API answered `status` (an HTTP error other than 401/403 and the not-found cases handled
by [`BlockNotFoundError`](@ref) and [`VariableNotFoundError`](@ref)).
"""
struct PrefectAPIError <: PrefectInterfacesError
    method::String
    url::String
    status::Int
    detail::String
end

function Base.showerror(io::IO, e::PrefectAPIError)
    print(io, "PrefectAPIError: ", e.method, " ", redact_url(e.url), " answered HTTP ", e.status)
    isempty(e.detail) || print(io, ": ", e.detail)
    if e.status >= 500
        print(io, ". The server failed; see the Prefect server's log, then retry.")
    else
        print(io, ". Check the request against the Prefect server's version of the REST API.")
    end
end

"""
    UnauthorizedError(url, status, auth)

The Prefect API refused the request (HTTP 401 or 403). `auth` says which credential was sent
(`"PREFECT_API_KEY"`, `"PREFECT_API_AUTH_STRING"` or `"none"`).
"""
struct UnauthorizedError <: PrefectInterfacesError
    url::String
    status::Int
    auth::String
end

function Base.showerror(io::IO, e::UnauthorizedError)
    print(io, "UnauthorizedError: the Prefect API at ", redact_url(e.url), " answered HTTP ", e.status, "; ")
    if e.auth == "none"
        print(io, "no credential was sent. Set PREFECT_API_KEY (Prefect Cloud) or PREFECT_API_AUTH_STRING ",
              "(\"user:password\" for a server started with auth).")
    else
        print(io, "the credential from ", e.auth, " was refused. Check its value, and that PREFECT_API_URL ",
              "points at the workspace or server it belongs to.")
    end
end

"""
    BlockNotFoundError(blockname, existing)

No block document named `blockname` (`"slug/name"`); `existing` lists the blocks of that type that do exist.
"""
struct BlockNotFoundError <: PrefectInterfacesError
    blockname::String
    existing::Vector{String}
end

function Base.showerror(io::IO, e::BlockNotFoundError)
    print(io, "BlockNotFoundError: no block \"", e.blockname, "\" on the Prefect server. ")
    if isempty(e.existing)
        slug = first(split(e.blockname, '/'))
        print(io, "There is no block of type \"", slug, "\" at all; declare it in envs/ENV.blocks.toml and ",
              "create it with `invoke blocks ENV`, or check the type slug with `PrefectInterfaces.ls()`.")
    else
        print(io, "Blocks of that type: ", join(e.existing, ", "), ". Use one of them, or declare it in ",
              "envs/ENV.blocks.toml and create it with `invoke blocks ENV`.")
    end
end

"""
    MalformedBlockNameError(name)

A block name must be `"slug/name"`, e.g. `"local-file-system/willowdata"`.
"""
struct MalformedBlockNameError <: PrefectInterfacesError
    name::String
end

function Base.showerror(io::IO, e::MalformedBlockNameError)
    print(io, "MalformedBlockNameError: \"", e.name, "\" is not a block name. Write the block type slug, a ",
          "slash and the block's name, e.g. \"local-file-system/willowdata\" or \"secret/db-password\".")
end

"""
    VariableNotFoundError(name)

No Prefect Variable called `name` exists and no `default` was given to [`getvariable`](@ref).
"""
struct VariableNotFoundError <: PrefectInterfacesError
    name::String
end

function Base.showerror(io::IO, e::VariableNotFoundError)
    print(io, "VariableNotFoundError: no Prefect Variable \"", e.name, "\". Declare it in envs/ENV.blocks.toml ",
          "and create it with `invoke blocks ENV`, or pass `default=`.")
end

"""
    MissingEnvError(name, purpose)

The environment variable `name` is unset or empty; `purpose` says what it is for.
"""
struct MissingEnvError <: PrefectInterfacesError
    name::String
    purpose::String
end

function Base.showerror(io::IO, e::MissingEnvError)
    print(io, "MissingEnvError: the environment variable ", e.name, " is not set. ", e.purpose)
end

"""
    DatasetError(field, value, reason)

An invalid [`Dataset`](@ref) field: `field` names it (e.g. `"dataset_name"`), `reason` says what is allowed.
"""
struct DatasetError <: PrefectInterfacesError
    field::String
    value::String
    reason::String
end

function Base.showerror(io::IO, e::DatasetError)
    print(io, "DatasetError: invalid ", e.field, " \"", e.value, "\": ", e.reason)
end

"""
    ArgumentsError(arg, reason)

A command-line argument given to [`parseargs`](@ref) is not `--key=value`.
"""
struct ArgumentsError <: PrefectInterfacesError
    arg::String
    reason::String
end

function Base.showerror(io::IO, e::ArgumentsError)
    print(io, "ArgumentsError: bad argument \"", e.arg, "\": ", e.reason,
          " Pass each parameter as --key=value, e.g. --rundate=2026-11-21.")
end

"""
    UnsupportedBlockError(blockname, slug, operation)

The block `blockname` (of type `slug`) cannot do `operation` from Julia's standard library.
"""
struct UnsupportedBlockError <: PrefectInterfacesError
    blockname::String
    slug::String
    operation::String
end

function Base.showerror(io::IO, e::UnsupportedBlockError)
    print(io, "UnsupportedBlockError: ", e.operation, " is not available for block \"", e.blockname,
          "\" of type ", e.slug, ". Use a local-file-system block (e.g. a mounted bucket) for this datastore, ",
          "or move the files with a Python task.")
end

"""
    JSONError(msg, pos)

Malformed JSON text (RFC 8259) at byte `pos`, or a value that JSON cannot represent.
"""
struct JSONError <: PrefectInterfacesError
    msg::String
    pos::Int
end

function Base.showerror(io::IO, e::JSONError)
    print(io, "JSONError: ", e.msg)
    e.pos > 0 && print(io, " at byte ", e.pos)
    print(io, ". The text is not valid JSON (RFC 8259).")
end

"Drop a user:password part from a URL before it is shown."
function redact_url(url::AbstractString)
    m = match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@(.*)$", url)
    m === nothing ? String(url) : string(m.captures[1], "****@", m.captures[2])
end
