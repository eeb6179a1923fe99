# The Prefect REST API: where it is, how to authenticate, and requests with timeouts and retries.

"""
    PrefectAPI(url=nothing; key=nothing, auth_string=nothing, timeout=30.0, retries=3, backoff=0.5, patience=nothing, env=ENV)
    PrefectAPI(url, key; kwargs...)

Where and how to reach the Prefect REST API.

- `url`: defaults to `PREFECT_API_URL` (e.g. `http://127.0.0.1:4200/api`); [`MissingEnvError`](@ref) when
  neither is given.
- `key`: defaults to `PREFECT_API_KEY`; sent as `Authorization: Bearer ...` (Prefect Cloud). Held as a
  [`SecretString`](@ref): `api.key.secret` is `""` when there is no key.
- `auth_string`: defaults to `PREFECT_API_AUTH_STRING` (`"user:password"`); sent as
  `Authorization: Basic ...` (a self-hosted server started with auth). The key wins when both are set.
  No `Authorization` header at all is sent when neither is set.
- `timeout`: seconds for one request; `retries`: extra attempts after a connection error or an HTTP 5xx
  (never after a 4xx), waiting `backoff`, `2backoff`, `4backoff`... seconds in between.
- `patience`: seconds a request keeps being retried while the server is down or busy (connection refused,
  reset or timed out, HTTP 502/503/504), so a job rides out a server restart; defaults to
  `PREFECT_JULIA_API_PATIENCE`, else 60. Waits grow as above, up to 5 s each.

`url` and `key` can be changed later (`api.url = "..."`, `api.key = "..."` or `SecretString("...")`).
Credentials are never shown.
"""
mutable struct PrefectAPI <: AbstractPrefectConfig
    url::String
    key::SecretString
    auth_string::Union{Nothing,SecretValue}
    timeout::Float64
    retries::Int
    backoff::Float64
    patience::Float64
end

"The longest wait between two tries of a request."
const MAX_BACKOFF = 5.0
const DEFAULT_PATIENCE = 60.0

nonempty(x) = (x === nothing || isempty(x)) ? nothing : String(x)
keytext(k) = k isa SecretString ? secretvalue(k) : k isa SecretValue ? string(secretvalue(k)) : k

function PrefectAPI(url::Union{Nothing,AbstractString}=nothing; key=nothing, auth_string=nothing,
                    timeout::Real=30.0, retries::Integer=3, backoff::Real=0.5, patience=nothing,
                    env::AbstractDict=ENV)
    url = something(nonempty(url), nonempty(get(env, "PREFECT_API_URL", nothing)), Some(nothing))
    url === nothing && throw(MissingEnvError("PREFECT_API_URL",
        "Set it to the Prefect API, e.g. PREFECT_API_URL=http://127.0.0.1:4200/api, or pass the URL to PrefectAPI(url)."))
    key = something(nonempty(keytext(key)), nonempty(get(env, "PREFECT_API_KEY", nothing)), "")
    auth = something(nonempty(keytext(auth_string)), nonempty(get(env, "PREFECT_API_AUTH_STRING", nothing)), Some(nothing))
    patience = patience === nothing ? patience_setting(env) : Float64(patience)
    return PrefectAPI(rstrip(url, '/'), SecretString(key), auth === nothing ? nothing : SecretValue(auth),
                      Float64(timeout), Int(retries), Float64(backoff), patience)
end

"`PREFECT_JULIA_API_PATIENCE` from `env` (seconds), else the default; a value that is no number of seconds is an error."
function patience_setting(env::AbstractDict)
    raw = strip(get(env, "PREFECT_JULIA_API_PATIENCE", ""))
    isempty(raw) && return DEFAULT_PATIENCE
    value = tryparse(Float64, raw)
    (value === nothing || !(value >= 0)) && throw(ArgumentError(
        "PREFECT_JULIA_API_PATIENCE=\"$raw\" is not a number of seconds; set it to e.g. 60 (or 0 not to wait)"))
    return value
end

PrefectAPI(url::AbstractString, key::Union{AbstractString,SecretString}; kwargs...) =
    PrefectAPI(url; key=key, kwargs...)

function Base.setproperty!(api::PrefectAPI, name::Symbol, value)
    if name === :url
        isempty(value) && throw(ArgumentError("the API URL cannot be empty"))
        setfield!(api, :url, String(rstrip(value, '/')))
    elseif name === :key
        setfield!(api, :key, value === nothing ? SecretString("") : SecretString(keytext(value)))
    elseif name === :auth_string
        text = nonempty(keytext(value))
        setfield!(api, :auth_string, text === nothing ? nothing : SecretValue(text))
    else
        setfield!(api, name, convert(fieldtype(PrefectAPI, name), value))
    end
    return value
end

"Whether `api` holds an API key (sent as a Bearer token)."
haskey_(api::PrefectAPI) = !isempty(api.key)

function Base.show(io::IO, api::PrefectAPI)
    print(io, "PrefectAPI(\"", redact_url(api.url), "\"")
    haskey_(api) && print(io, ", key=", MASK)
    api.auth_string === nothing || print(io, ", auth_string=", MASK)
    print(io, ")")
end

"Which credential a request sends: \"PREFECT_API_KEY\", \"PREFECT_API_AUTH_STRING\" or \"none\"."
authsource(api::PrefectAPI) = haskey_(api) ? "PREFECT_API_KEY" :
                              api.auth_string !== nothing ? "PREFECT_API_AUTH_STRING" : "none"

"The request headers for `api` (no Authorization header without a credential)."
function request_headers(api::PrefectAPI; json_body::Bool=false)
    h = Pair{String,String}["Accept" => "application/json"]
    json_body && push!(h, "Content-Type" => "application/json")
    if haskey_(api)
        push!(h, "Authorization" => "Bearer " * secretvalue(api.key))
    elseif api.auth_string !== nothing
        push!(h, "Authorization" => "Basic " * base64encode(secretvalue(api.auth_string)))
    end
    return h
end

"Percent-encode one URL path segment."
function escape_segment(s::AbstractString)
    io = IOBuffer()
    for b in codeunits(String(s))
        if (UInt8('A') <= b <= UInt8('Z')) || (UInt8('a') <= b <= UInt8('z')) || (UInt8('0') <= b <= UInt8('9')) ||
           b in (UInt8('-'), UInt8('_'), UInt8('.'), UInt8('~'))
            write(io, b)
        else
            write(io, '%', uppercase(string(b, base=16, pad=2)))
        end
    end
    return String(take!(io))
end

"HTTP requests sent to the Prefect API by this process, retries included (read by the benchmarks)."
const REQUESTS_SENT = Ref(0)

"Whether a request may succeed if sent again soon: no answer at all (refused, reset, timed out) or 502/503/504."
transient(res::HTTPResult) = res.status == 0 || res.status in (502, 503, 504)

"""
    apirequest(api, method, path; body=nothing) -> HTTPResult

One request to `api.url * path`, tried again after an HTTP 5xx or no answer: `api.retries` times, and for as
long as `api.patience` seconds allow while the server is down or busy ([`transient`](@ref)). Raises
[`PrefectConnectionError`](@ref) when no answer came back; returns any HTTP answer (callers decide on 4xx).
"""
function apirequest(api::PrefectAPI, method::String, path::String; body=nothing)
    url = api.url * path
    bytes = body === nothing ? nothing : Vector{UInt8}(codeunits(json(body)))
    started = time()
    attempt = 0
    renewed = false
    while true
        # The CSRF token is asked for on each try: a server that was down when the first was sent has none yet.
        headers = vcat(request_headers(api; json_body=bytes !== nothing), csrf_headers(api, method))
        REQUESTS_SENT[] += 1
        res = http_request(method, url, headers, bytes, api.timeout)
        if res.status == 403 && method in CSRF_METHODS && !renewed  # the CSRF token expired: renew it once
            renewed = true
            headers = vcat(request_headers(api; json_body=bytes !== nothing), csrf_headers(api, method; refresh=true))
            res = http_request(method, url, headers, bytes, api.timeout)
        end
        (res.status == 0 || res.status >= 500) || return res
        wait = min(MAX_BACKOFF, api.backoff * 2.0^attempt)
        patient = transient(res) && time() - started + wait <= api.patience
        if attempt >= api.retries && !patient
            res.status == 0 && throw(PrefectConnectionError(url, res.reason, time() - started))
            return res
        end
        attempt == 0 && transient(res) && api.patience > 0 && @warn string("The Prefect API at ",
            redact_url(api.url), " did not answer (", res.status == 0 ? res.reason : "HTTP $(res.status)",
            "); trying again for up to ", round(api.patience; digits=1), " s.") maxlog = 1
        sleep(wait)
        attempt += 1
    end
end

"""
    apijson(api, method, path; body=nothing, notfound=nothing) -> Any

Parsed JSON answer of a request. HTTP 401/403 raise [`UnauthorizedError`](@ref); HTTP 404 returns
`notfound`; any other error status raises [`PrefectAPIError`](@ref).
"""
function apijson(api::PrefectAPI, method::String, path::String; body=nothing, notfound=nothing)
    res = apirequest(api, method, path; body=body)
    url = api.url * path
    (res.status == 401 || res.status == 403) && throw(UnauthorizedError(url, res.status, authsource(api)))
    res.status == 404 && return notfound
    if res.status >= 300
        throw(PrefectAPIError(method, url, res.status, scrub(errordetail(res.body))))
    end
    return parsejson(res.body)
end

function errordetail(body::Vector{UInt8})
    text = String(copy(body))
    detail = try
        v = parsejson(text)
        v isa AbstractDict && haskey(v, "detail") ? string(v["detail"]) : text
    catch
        text
    end
    return length(detail) > 300 ? first(detail, 300) * "..." : detail
end
