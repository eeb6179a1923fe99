# One HTTP request, by Downloads (Julia >= 1.6) or by the curl program (Julia 1.5, or no Downloads).
# Returns an HTTPResult; a transport failure (no answer at all) is `status == 0` with a reason.

struct HTTPResult
    status::Int            # 0 when no HTTP answer came back
    body::Vector{UInt8}
    reason::String         # why there was no answer (connection refused, timeout, ...)
end

# Downloads is a standard library from Julia 1.6 on. It is loaded by its UUID on the first request rather
# than declared in Project.toml: a package declaring it cannot be added to a project on Julia 1.5.
const DOWNLOADS_ID = Base.PkgId(Base.UUID("f43a241f-c20a-4ad4-852c-f6b1247861c6"), "Downloads")
const DOWNLOADS = Ref{Any}(nothing)      # the module, or `false` when it cannot be loaded

function downloads_module()
    m = DOWNLOADS[]
    m === nothing || return m
    m = try
        Base.require(DOWNLOADS_ID)
    catch
        # An environment stack without the standard library (e.g. a test sandbox): look there directly.
        try
            push!(LOAD_PATH, "@stdlib")
            Base.require(DOWNLOADS_ID)
        catch
            false
        finally
            pop!(LOAD_PATH)
        end
    end
    DOWNLOADS[] = m
    return m
end

function http_request(method::String, url::String, headers::Vector{Pair{String,String}},
                      body::Union{Nothing,Vector{UInt8}}, timeout::Float64)
    dl = USE_DOWNLOADS ? downloads_module() : false
    dl === false && return curl_request(method, url, headers, body, timeout)
    return downloads_request(dl, method, url, headers, body, timeout)
end

function downloads_request(dl::Module, method::String, url::String, headers::Vector{Pair{String,String}},
                           body::Union{Nothing,Vector{UInt8}}, timeout::Float64)
    out = IOBuffer()
    input = body === nothing ? nothing : IOBuffer(body)
    resp = try
        Base.invokelatest(dl.request, url; method=method, headers=headers, input=input, output=out,
                          timeout=timeout, throw=false)
    catch err
        return HTTPResult(0, UInt8[], sprint(showerror, err))
    end
    if resp isa dl.Response && resp.status > 0
        return HTTPResult(resp.status, take!(out), "")
    end
    reason = resp isa dl.RequestError ? resp.message : "no HTTP answer"
    return HTTPResult(0, UInt8[], isempty(reason) ? "no HTTP answer" : reason)
end

# Arguments and secrets go to curl through its config file on stdin (`-K -`), never on its command line,
# where other users could read them in the process list.
curl_quote(s::AbstractString) = "\"" * replace(replace(replace(replace(s, "\\" => "\\\\"), "\"" => "\\\""),
                                                       "\n" => "\\n"), "\r" => "\\r") * "\""

const CURL_REASONS = Dict(
    6 => "could not resolve the host name",
    7 => "connection refused",
    28 => "timed out",
    35 => "TLS handshake failed",
    52 => "the server sent no answer",
    56 => "the connection was reset",
)

function curl_request(method::String, url::String, headers::Vector{Pair{String,String}},
                      body::Union{Nothing,Vector{UInt8}}, timeout::Float64)
    cfg = IOBuffer()
    println(cfg, "url = ", curl_quote(url))
    println(cfg, "request = ", curl_quote(method))
    for (k, v) in headers
        println(cfg, "header = ", curl_quote(string(k, ": ", v)))
    end
    bodyfile = nothing
    if body !== nothing
        if !isempty(body) && body[1] != UInt8('@') && isvalid(String(copy(body)))
            println(cfg, "data-binary = ", curl_quote(String(copy(body))))
        else
            bodyfile, bio = mktemp()
            write(bio, body)
            close(bio)
            println(cfg, "data-binary = ", curl_quote("@" * bodyfile))
        end
    end
    println(cfg, "max-time = ", timeout)
    println(cfg, "connect-timeout = ", min(timeout, 10.0))
    println(cfg, "write-out = \"\\n%{http_code}\"")
    out = IOBuffer()
    err = IOBuffer()
    cmd = `curl --silent --show-error --config -`
    proc = try
        run(pipeline(ignorestatus(cmd); stdin=IOBuffer(take!(cfg)), stdout=out, stderr=err))
    catch e
        bodyfile === nothing || rm(bodyfile; force=true)
        return HTTPResult(0, UInt8[], "cannot run curl ($(sprint(showerror, e))); install curl")
    end
    bodyfile === nothing || rm(bodyfile; force=true)
    bytes = take!(out)
    if proc.exitcode != 0
        reason = get(CURL_REASONS, proc.exitcode, "curl exit code $(proc.exitcode)")
        return HTTPResult(0, UInt8[], reason)
    end
    nl = findlast(==(UInt8('\n')), bytes)
    nl === nothing && return HTTPResult(0, UInt8[], "unreadable answer from curl")
    status = something(tryparse(Int, String(bytes[nl+1:end])), 0)
    status == 0 && return HTTPResult(0, UInt8[], "no HTTP answer")
    resize!(bytes, nl - 1)
    return HTTPResult(status, bytes, "")
end
