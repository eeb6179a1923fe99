# Datasets on S3 and S3-compatible stores, through an s3-bucket block and its aws-credentials block.
#
# Requests are signed with AWS Signature Version 4. With curl (Julia < 1.6) curl signs them itself
# (`--aws-sigv4`); the key and secret reach curl only in its config on stdin (`-K -`), never on its command
# line. With Downloads (Julia >= 1.6) the request is signed here, with SHA's hmac_sha256. Objects are
# addressed path-style: `{endpoint}/{bucket}/{bucket_folder}/{relative path}`. One PUT replaces an object
# whole, so readers see the old object or the new one; a dataset write puts the dated object, then latest.

"""
    S3Error(kind, location, detail)

A request to an S3 datastore failed. `kind` is `:unreachable` (no answer from the endpoint),
`:credentials` (the keys were refused), `:nobucket` (the bucket does not exist), `:missing` (no such
object) or `:failed` (any other answer). `showerror` names the fix; no secret is ever part of it.
"""
struct S3Error <: PrefectInterfacesError
    kind::Symbol
    location::String
    detail::String
end

function Base.showerror(io::IO, e::S3Error)
    print(io, "S3Error: ")
    if e.kind === :unreachable
        print(io, "cannot reach the S3 endpoint for ", e.location, " (", e.detail, "). Start the S3 server, or ",
              "correct endpoint_url in the aws-credentials block.")
    elseif e.kind === :credentials
        print(io, "the S3 store refused the credentials for ", e.location, " (", e.detail, "). Correct the ",
              "access key and secret of the aws-credentials block.")
    elseif e.kind === :nobucket
        print(io, "the bucket of ", e.location, " does not exist. Create it, or correct bucket_name in the ",
              "s3-bucket block.")
    elseif e.kind === :missing
        print(io, "no object at ", e.location, ". ", e.detail)
    else
        print(io, "the request for ", e.location, " failed: ", e.detail, ".")
    end
end

"Where and how to reach the objects of an s3-bucket block."
struct S3Target
    endpoint::String       # scheme://host[:port], no trailing slash
    region::String
    bucket::String
    folder::String         # without leading or trailing '/'
    access_key::String
    secret::SecretString
    token::Union{Nothing,SecretString}
end

function S3Target(b::S3BucketBlock)
    c = b.credentials
    c === nothing && throw(S3Error(:credentials, "s3://" * b.bucket_name, "the s3-bucket block has no credentials"))
    (c.aws_access_key_id === nothing || c.aws_secret_access_key === nothing) &&
        throw(S3Error(:credentials, "s3://" * b.bucket_name, "the aws-credentials block lacks a key or secret"))
    region = something(c.region_name, "us-east-1")
    endpoint = c.endpoint_url === nothing ? "https://s3.$(region).amazonaws.com" : rstrip(c.endpoint_url, '/')
    return S3Target(endpoint, region, b.bucket_name, strip(b.bucket_folder, '/'), c.aws_access_key_id,
                    c.aws_secret_access_key, c.aws_session_token)
end

s3key(t::S3Target, relpath::AbstractString) = isempty(t.folder) ? String(relpath) : string(t.folder, "/", relpath)
s3location(t::S3Target, relpath::AbstractString) = string("s3://", t.bucket, "/", s3key(t, relpath))

"Percent-encode as Signature V4 wants: unreserved characters stay, and `/` too when `path`."
function uriencode(s::AbstractString; path::Bool=false)
    io = IOBuffer()
    for b in codeunits(s)
        c = Char(b)
        if ('A' <= c <= 'Z') || ('a' <= c <= 'z') || ('0' <= c <= '9') || c in ('-', '_', '.', '~') || (path && c == '/')
            write(io, c)
        else
            print(io, '%', uppercase(string(b; base=16, pad=2)))
        end
    end
    return String(take!(io))
end

"The canonical (sorted, encoded) query string of `query`."
canonicalquery(query::Vector{Pair{String,String}}) =
    join([string(uriencode(k), "=", uriencode(v)) for (k, v) in sort(query; by=first)], "&")

"""
    sigv4headers(method, url_path, query, host, region, access_key, secret, token, payload_hash, amzdate)

The headers that sign a request to S3 with AWS Signature Version 4 (`Authorization`, `x-amz-date`,
`x-amz-content-sha256`, and `x-amz-security-token` with a session token). `url_path` is already
percent-encoded; `amzdate` is `yyyymmddTHHMMSSZ`.
"""
function sigv4headers(method::AbstractString, url_path::AbstractString, query::Vector{Pair{String,String}},
                      host::AbstractString, region::AbstractString, access_key::AbstractString,
                      secret::AbstractString, token, payload_hash::AbstractString, amzdate::AbstractString)
    day = amzdate[1:8]
    headers = Pair{String,String}["host" => host, "x-amz-content-sha256" => payload_hash, "x-amz-date" => amzdate]
    token === nothing || push!(headers, "x-amz-security-token" => token)
    sort!(headers; by=first)
    signed = join(first.(headers), ";")
    canonical = join([method, url_path, canonicalquery(query),
                      join([string(k, ":", strip(v), "\n") for (k, v) in headers]), signed, payload_hash], "\n")
    scope = string(day, "/", region, "/s3/aws4_request")
    tosign = join(["AWS4-HMAC-SHA256", amzdate, scope, bytes2hex(sha256(canonical))], "\n")
    key = hmac_sha256(Vector{UInt8}(codeunits("AWS4" * secret)), day)
    for part in (region, "s3", "aws4_request")
        key = hmac_sha256(key, part)
    end
    signature = bytes2hex(hmac_sha256(key, tosign))
    auth = string("AWS4-HMAC-SHA256 Credential=", access_key, "/", scope, ", SignedHeaders=", signed,
                  ", Signature=", signature)
    out = Pair{String,String}["Authorization" => auth, "x-amz-date" => amzdate, "x-amz-content-sha256" => payload_hash]
    token === nothing || push!(out, "x-amz-security-token" => token)
    return out
end

const UNSIGNED = "UNSIGNED-PAYLOAD"

amznow() = Dates.format(Dates.now(Dates.UTC), dateformat"yyyymmdd\THHMMSS\Z")

function hostof(endpoint::AbstractString)
    m = match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/]+)", endpoint)
    m === nothing && throw(S3Error(:unreachable, endpoint, "the endpoint is not a URL"))
    return String(m.captures[1])
end

struct S3Answer
    status::Int              # 0: no answer
    body::Vector{UInt8}
    reason::String
end

"""
    s3request(t, method, key; query=[], upload=nothing, download=nothing, transport=S3_TRANSPORT[])

One request for object `key` (or the bucket when `key` is empty). `upload` is a file whose bytes are PUT;
with `download`, the answer's body goes to that file. `transport` is `:curl` (curl signs), `:signed_curl`
(signed here, sent by curl) or `:downloads` (signed here, sent by Downloads; Julia >= 1.6).
"""
function s3request(t::S3Target, method::String, key::AbstractString; query::Vector{Pair{String,String}}=Pair{String,String}[],
                   upload::Union{Nothing,String}=nothing, download::Union{Nothing,String}=nothing,
                   transport::Symbol=S3_TRANSPORT[], timeout::Float64=3600.0)
    path = string("/", uriencode(t.bucket), isempty(key) ? "" : "/" * uriencode(key; path=true))
    q = canonicalquery(query)
    url = string(t.endpoint, path, isempty(q) ? "" : "?" * q)
    if transport === :downloads
        return downloads_request(t, method, url, path, query, upload, download, timeout)
    end
    cfg = IOBuffer()
    println(cfg, "url = ", curl_quote(url))
    println(cfg, "request = ", curl_quote(method))
    if transport === :curl
        println(cfg, "user = ", curl_quote(string(t.access_key, ":", secretvalue(t.secret))))
        println(cfg, "aws-sigv4 = ", curl_quote("aws:amz:$(t.region):s3"))
        println(cfg, "header = ", curl_quote("x-amz-content-sha256: $UNSIGNED"))
        t.token === nothing || println(cfg, "header = ", curl_quote("x-amz-security-token: $(secretvalue(t.token))"))
    else
        token = t.token === nothing ? nothing : String(secretvalue(t.token))
        for (k, v) in sigv4headers(method, path, query, hostof(t.endpoint), t.region, t.access_key,
                                   String(secretvalue(t.secret)), token, UNSIGNED, amznow())
            println(cfg, "header = ", curl_quote("$k: $v"))
        end
    end
    upload === nothing || println(cfg, "upload-file = ", curl_quote(upload))
    println(cfg, "output = ", curl_quote(download === nothing ? "-" : download))
    println(cfg, "max-time = ", timeout)
    println(cfg, "connect-timeout = 10")
    println(cfg, "write-out = \"\\n%{http_code}\"")
    out = IOBuffer()
    err = IOBuffer()
    proc = try
        run(pipeline(ignorestatus(`curl --silent --show-error --config -`); stdin=IOBuffer(take!(cfg)),
                     stdout=out, stderr=err))
    catch e
        return S3Answer(0, UInt8[], "cannot run curl; install curl")
    end
    bytes = take!(out)
    proc.exitcode != 0 && return S3Answer(0, UInt8[], get(CURL_REASONS, proc.exitcode, "curl exit code $(proc.exitcode)"))
    nl = findlast(==(UInt8('\n')), bytes)
    nl === nothing && return S3Answer(0, UInt8[], "unreadable answer from curl")
    status = something(tryparse(Int, String(bytes[nl+1:end])), 0)
    resize!(bytes, nl - 1)
    if download !== nothing && status >= 300 && isfile(download)
        bytes = read(download)   # an error document, not data
    end
    return S3Answer(status, bytes, status == 0 ? "no HTTP answer" : "")
end

@static if USE_DOWNLOADS
function downloads_request(t::S3Target, method, url, path, query, upload, download, timeout)
    token = t.token === nothing ? nothing : String(secretvalue(t.token))
    headers = sigv4headers(method, path, query, hostof(t.endpoint), t.region, t.access_key,
                           String(secretvalue(t.secret)), token, UNSIGNED, amznow())
    output = download === nothing ? IOBuffer() : open(download, "w")
    input = upload === nothing ? nothing : open(upload, "r")
    try
        resp = Downloads.request(url; method=method, headers=headers, input=input, output=output,
                                 timeout=timeout, throw=false)
        resp isa Downloads.Response && resp.status > 0 || return S3Answer(0, UInt8[],
            resp isa Downloads.RequestError ? resp.message : "no HTTP answer")
        body = output isa IOBuffer ? take!(output) : UInt8[]
        if download !== nothing && resp.status >= 300
            close(output)
            body = read(download)
        end
        return S3Answer(resp.status, body, "")
    catch err
        return S3Answer(0, UInt8[], sprint(showerror, err))
    finally
        input === nothing || close(input)
        output isa IOStream && close(output)
    end
end
else
downloads_request(args...) = throw(ArgumentError("the Downloads transport needs Julia >= 1.6"))
end

"Which transport requests use: `:downloads` on Julia >= 1.6, else `:curl`. Tests may switch it."
const S3_TRANSPORT = Ref(USE_DOWNLOADS ? :downloads : :curl)

xmlunescape(s::AbstractString) = replace(replace(replace(replace(replace(s, "&lt;" => "<"), "&gt;" => ">"),
                                         "&quot;" => "\""), "&apos;" => "'"), "&amp;" => "&")

function xmlfield(body::Vector{UInt8}, name::String)
    m = match(Regex("<$name>(.*?)</$name>", "s"), String(copy(body)))
    return m === nothing ? "" : xmlunescape(m.captures[1])
end

"Turn a failed answer into an S3Error (`:missing` only for `missingok` requests of an object)."
function s3check(t::S3Target, answer::S3Answer, relpath::AbstractString)
    where = s3location(t, relpath)
    answer.status == 0 && throw(S3Error(:unreachable, where, "$(t.endpoint): $(answer.reason)"))
    200 <= answer.status < 300 && return answer
    code = xmlfield(answer.body, "Code")
    code == "NoSuchBucket" && throw(S3Error(:nobucket, where, code))
    code == "NoSuchKey" && throw(S3Error(:missing, where, "Write it first, or pick an existing rundate."))
    (answer.status == 403 || code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied")) &&
        throw(S3Error(:credentials, where, isempty(code) ? "HTTP 403" : code))
    answer.status == 404 && throw(S3Error(:missing, where, "Write it first, or pick an existing rundate."))
    throw(S3Error(:failed, where, "HTTP $(answer.status) $(code)"))
end

function withtempfile(f)
    path, io = mktemp()
    close(io)
    try
        return f(path)
    finally
        rm(path; force=true)
    end
end

"""
    read(block::S3BucketBlock, relpath) -> Vector{UInt8}

The object `relpath` under the block's bucket folder. Raises [`S3Error`](@ref).
"""
function Base.read(b::S3BucketBlock, relpath::AbstractString)
    t = S3Target(b)
    withtempfile() do tmp
        s3check(t, s3request(t, "GET", s3key(t, relpath); download=tmp), relpath)
        return read(tmp)
    end
end
Base.read(b::S3BucketBlock, relpath::AbstractString, ::Type{String}) = String(read(b, relpath))

"""
    write(block::S3BucketBlock, relpath, data) -> String

Put `data` (bytes, a string or an `IO`) whole as the object `relpath`; returns its `s3://` location.
Readers see the previous object or this one, never part of it.
"""
function Base.write(b::S3BucketBlock, relpath::AbstractString, data)
    t = S3Target(b)
    withtempfile() do tmp
        open(tmp, "w") do io
            writedata(io, data)
        end
        s3check(t, s3request(t, "PUT", s3key(t, relpath); upload=tmp), relpath)
    end
    return s3location(t, relpath)
end

"Keys (relative to the block's folder) under `prefix`, every page."
function s3keys(b::S3BucketBlock, prefix::AbstractString)
    t = S3Target(b)
    full = s3key(t, prefix)
    start = length(s3key(t, "")) + 1
    keys = String[]
    token = ""
    while true
        query = Pair{String,String}["list-type" => "2", "prefix" => full]
        isempty(token) || push!(query, "continuation-token" => token)
        answer = s3check(t, s3request(t, "GET", ""; query=query), prefix)
        text = String(copy(answer.body))
        for m in eachmatch(r"<Key>(.*?)</Key>"s, text)
            push!(keys, xmlunescape(m.captures[1])[start:end])
        end
        token = xmlfield(answer.body, "NextContinuationToken")
        (xmlfield(answer.body, "IsTruncated") == "true" && !isempty(token)) || break
    end
    return keys
end

"""
    rundates(ds::Dataset; fallback=true, block=nothing, api=nothing, env=ENV) -> Vector{String}

The rundates (`"yyyy-mm-dd"`) that have a dated file for the dataset, oldest first, in a local-file-system
or an s3-bucket datastore; with a base's store to fall back to (see [`Dataset`](@ref)), those of both
stores together (`fallback=false`: the own store's).
"""
function rundates(ds::Dataset; fallback::Bool=true, block=nothing, api=nothing, env::AbstractDict=ENV)
    dir = string(ds.dataset_type, "/", ds.file_format, "/dataset=", ds.dataset_name)
    data = "data." * ds.file_format
    found = String[]
    withblock(ds, block, api, env) do b
        if b isa S3BucketBlock
            for key in s3keys(b, dir * "/rundate=")
                parts = split(key[length(dir)+2:end], '/')
                length(parts) == 2 && parts[2] == data && push!(found, String(parts[1][length("rundate=")+1:end]))
            end
        elseif b isa LocalFSBlock
            append!(found, localrundates(ds, b, env; fallback=fallback))
        else
            unsupported(b, "listing rundates")
        end
    end
    return sort!(unique!(found))
end
