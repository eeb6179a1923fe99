# CSRF tokens: a server with Prefect's CSRF protection refuses a POST, PUT, PATCH or DELETE without one.
# A token comes from `GET /csrf-token?client=ID` (authenticated) and is sent with that client id; a server
# without CSRF protection answers 422 there, and then no token is sent.

const CSRF_METHODS = ("POST", "PUT", "PATCH", "DELETE")
const CSRF_CLIENT = Ref{String}("")
const CSRF_TOKENS = Dict{String,String}()   # API URL => token ("" when the server has no CSRF protection)

function csrf_client()
    isempty(CSRF_CLIENT[]) && (CSRF_CLIENT[] = string(rand(UInt128); base=16, pad=32))
    return CSRF_CLIENT[]
end

"The CSRF headers a request with `method` needs on `api`'s server (none for GET or without protection)."
function csrf_headers(api::PrefectAPI, method::String; refresh::Bool=false)
    method in CSRF_METHODS || return Pair{String,String}[]
    token = refresh ? nothing : get(CSRF_TOKENS, api.url, nothing)
    if token === nothing
        res = http_request("GET", api.url * "/csrf-token?client=" * csrf_client(), request_headers(api),
                           nothing, api.timeout)
        token = ""
        if res.status == 200
            doc = parsejson(res.body)
            token = doc isa AbstractDict ? string(get(doc, "token", "")) : ""
        end
        res.status in (200, 422) && (CSRF_TOKENS[api.url] = token)
    end
    isempty(token) && return Pair{String,String}[]
    return Pair{String,String}["Prefect-Csrf-Token" => token, "Prefect-Csrf-Client" => csrf_client()]
end
