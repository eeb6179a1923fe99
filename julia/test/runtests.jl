# Tests of PrefectInterfaces.
#
#   julia --project=julia --startup-file=no julia/test/runtests.jl
#
#   julia --project=julia -e 'using Pkg; Pkg.test()'
#
# Unit tests need no server. Integration tests run when PREFECT_API_URL is set and use the blocks and
# variables named by the PI_TEST_* variables (tests/test_julia_suite.py creates them on a real server).
# compat.jl checks the API of PrefectInterfaces.jl, called as its users call it.
# One outer @testset: Test prints its "Test Summary:" table, and julia exits non-zero on any failure or error.

using PrefectInterfaces
using PrefectInterfaces: splitblockname, makeblock, request_headers, apirequest, apijson, logline
using Dates, Logging, Sockets, Test

const PI = PrefectInterfaces
const PKGDIR = normpath(joinpath(@__DIR__, ".."))
const JULIA_CMD = Base.julia_cmd()

# The environment of a julia started by a test: this one's, minus a load path narrowed by Pkg.test's sandbox
# (so the package's standard-library dependencies resolve without a manifest), plus `pairs`.
function childenv(pairs::Pair...)
    env = Dict{String,String}(k => v for (k, v) in ENV if k != "JULIA_LOAD_PATH")
    for (k, v) in pairs
        v === nothing ? delete!(env, k) : (env[k] = v)
    end
    return env
end

# --- helpers ------------------------------------------------------------------------------------------------

"Flatten a parsed JSON value into lines like make_json_vectors.py does."
function flatten(v, path::String, out::Vector{String})
    if v isa AbstractDict
        push!(out, "$path obj $(length(v))")
        hexkeys = sort!([(bytes2hex(codeunits(k)), k) for k in keys(v)])
        for (hk, k) in hexkeys
            flatten(v[k], "$path/$hk", out)
        end
    elseif v isa AbstractVector
        push!(out, "$path arr $(length(v))")
        for (i, x) in enumerate(v)
            flatten(x, "$path/$(i-1)", out)
        end
    elseif v isa Bool
        push!(out, "$path bool $v")
    elseif v === nothing
        push!(out, "$path null")
    elseif v isa Integer
        push!(out, "$path int $v")
    elseif v isa AbstractFloat
        push!(out, "$path float $(repr(v))")
    elseif v isa AbstractString
        push!(out, "$path str $(bytes2hex(codeunits(v)))")
    else
        error("unexpected $(typeof(v))")
    end
    return out
end

"Compare flattened lines; floats by value (Python and Julia spell them differently)."
function sameflat(julia::Vector{String}, python::Vector{String})
    length(julia) == length(python) || return false
    for (a, b) in zip(julia, python)
        pa, pb = split(a, ' '; limit=3), split(b, ' '; limit=3)
        pa[1:2] == pb[1:2] || return false
        if pa[2] == "float"
            x, y = parse(Float64, pa[3]), parse(Float64, replace(pb[3], "inf" => "Inf"))
            (x == y && signbit(x) == signbit(y)) || return false
        elseif a != b
            return false
        end
    end
    return true
end

function readvectors(path)
    vectors = []
    lines = readlines(path)
    i = 1
    while i <= length(lines)
        line = lines[i]
        if startswith(line, "valid ") || startswith(line, "invalid ")
            kind, label = split(line, ' '; limit=2)
            text = String(hex2bytes(split(lines[i+1], ' ')[2]))
            flat = String[]
            i += 2
            while lines[i] != "end"
                push!(flat, lines[i])
                i += 1
            end
            push!(vectors, (kind=kind, label=label, text=text, flat=flat))
        end
        i += 1
    end
    return vectors
end

"""A tiny HTTP server answering each request with the next (status, body), or with `answers(request)` when it
is a function; records the requests."""
function fakeserver(answers::Union{Function,Vector{Tuple{Int,String}}}; port::Integer=0)
    server = listen(Sockets.localhost, port)
    port = Int(getsockname(server)[2])
    requests = []
    task = @async begin
        n = 0
        while isopen(server)
            sock = try
                accept(server)
            catch
                break
            end
            head = String[]
            while true
                l = readline(sock)
                isempty(l) && break
                push!(head, l)
            end
            len = 0
            for h in head
                m = match(r"^content-length:\s*(\d+)"i, h)
                m === nothing || (len = parse(Int, m.captures[1]))
            end
            body = String(read(sock, len))
            request = (line=isempty(head) ? "" : head[1], headers=head[2:end], body=body)
            push!(requests, request)
            n += 1
            status, payload = answers isa Function ? answers(request) : answers[min(n, length(answers))]
            write(sock, "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: $(sizeof(payload))\r\nConnection: close\r\n\r\n", payload)
            close(sock)
        end
    end
    return (url="http://127.0.0.1:$port/api", requests=requests, close=() -> close(server))
end

function capturelog(f)
    io = IOBuffer()
    with_logger(f, PrefectLogger(io))
    return String(take!(io))
end

logrecords(text) = [parsejson(l[length(PI.LOG_PREFIX)+1:end]) for l in split(text, '\n') if !isempty(l)]

errtext(e) = sprint(showerror, e)

# --- unit tests ------------------------------------------------------------------------------------------------

function unit_tests()
    @testset "JSON reader against Python's json vectors" begin
        vectors = readvectors(joinpath(@__DIR__, "json_vectors.txt"))
        @test length(vectors) > 50
        for v in vectors
            if v.kind == "valid"
                ok = try
                    sameflat(flatten(parsejson(v.text), "", String[]), v.flat)
                catch e
                    @error "parsing failed" label = v.label exception = e
                    false
                end
                ok || @info "vector failed" v.label
                @test ok
            else
                @test_throws JSONError parsejson(v.text)
            end
        end
    end

    @testset "JSON writer" begin
        for v in readvectors(joinpath(@__DIR__, "json_vectors.txt"))
            v.kind == "valid" || continue
            value = parsejson(v.text)
            @test sameflat(flatten(parsejson(json(value)), "", String[]), v.flat)
        end
        @test json("a\"\\\n\u01\t/é") == "\"a\\\"\\\\\\n\\u0001\\t/é\""
        @test json(Dict("a" => Any[1, 2.5, nothing, true])) == "{\"a\":[1,2.5,null,true]}"
        @test json((x=1, y="z")) == "{\"x\":1,\"y\":\"z\"}"
        @test json(Date(2026, 11, 21)) == "\"2026-11-21\""
        @test json(1.0e20) == "1.0e20" && parsejson(json(1.0e20)) == 1.0e20
        @test json(Float32(1.5)) == "1.5"
        @test json(big(2)^70) == string(big(2)^70)
        @test json("\U1F600") == "\"\U1F600\""
        @test parsejson(json("a\ud800b")) == "a\ud800b"
        @test_throws JSONError json(NaN)
        @test_throws JSONError json(Inf)
        @test_throws JSONError json(sin)
        @test parsejson("123456789012345678901234567890") == big"123456789012345678901234567890"
        @test parsejson("[]") isa Vector{Any}
        @test parsejson("{}") isa Dict{String,Any}
        e = try
            parsejson("[1,]")
        catch err
            err
        end
        @test e isa JSONError && e.pos == 4 && occursin("RFC 8259", errtext(e))
    end

    @testset "secrets are masked everywhere" begin
        s = SecretValue("hunter2-topsecret")
        b = SecretBlock("secret/pw", s)
        @test secretvalue(b) == "hunter2-topsecret" && b.value isa SecretString && b.secret === b.value
        texts = [sprint(show, s), sprint(print, s), repr(s), "$s", string(s), sprint(dump, s),
                 sprint(show, b), repr(b), "$b", sprint(dump, b), sprint(show, MIME"text/plain"(), b),
                 json(Dict("k" => s)), sprint(show, [b])]
        for t in texts
            @test !occursin("hunter2", t)
        end
        @test occursin("********", "$s")
        @test secretvalue(s) == "hunter2-topsecret"
        @test secretvalue(b) == "hunter2-topsecret"
        @test_throws ArgumentError s.value
        out = capturelog() do
            @info "connecting" password = s
            @warn "oops, interpolated hunter2-topsecret by hand"
        end
        @test !occursin("hunter2", out)
        @test occursin("password=********", out)
        j = SecretValue(Dict("user" => "u", "password" => "p4ssw0rd-x"))
        @test !occursin("p4ssw0rd", sprint(dump, j) * repr(j) * "$j")
        @test secretvalue(j)["password"] == "p4ssw0rd-x"
        api = PrefectAPI("http://x/api"; key="pnu_abcdef123456", env=Dict{String,String}())
        @test !occursin("pnu_abcdef", repr(api) * sprint(dump, api) * "$api")
    end

    @testset "block names" begin
        @test splitblockname("local-file-system/willowdata") == ("local-file-system", "willowdata")
        for bad in ["willowdata", "a/b/c", "/x", "x/", "", " a/b"]
            @test_throws MalformedBlockNameError splitblockname(bad)
        end
        e = MalformedBlockNameError("willowdata")
        @test occursin("local-file-system/willowdata", errtext(e))
        @test_throws MalformedBlockNameError PrefectBlock("nope"; api=PrefectAPI("http://127.0.0.1:9/api"))
    end

    @testset "typed blocks from block documents" begin
        lfs = makeblock("local-file-system/d", "local-file-system", Dict{String,Any}("data" => Dict{String,Any}("basepath" => "/tmp/d")))
        @test lfs isa LocalFSBlock && lfs.basepath == "/tmp/d" && lfs isa AbstractPrefectBlock
        sec = makeblock("secret/s", "secret", Dict{String,Any}("data" => Dict{String,Any}("value" => Dict{String,Any}("a" => 1)),
            "block_schema" => Dict{String,Any}("fields" => Dict{String,Any}("secret_fields" => ["value", "value"]))))
        @test sec isa SecretBlock && secretvalue(sec) == Dict("a" => 1)
        s3doc = Dict{String,Any}(
            "data" => Dict{String,Any}("bucket_name" => "bkt", "bucket_folder" => "f",
                "credentials" => Dict{String,Any}("aws_access_key_id" => "AKIA1", "aws_secret_access_key" => "sk-12345",
                                                  "region_name" => "eu-west-1")),
            "block_schema" => Dict{String,Any}("fields" => Dict{String,Any}("secret_fields" => ["credentials.aws_secret_access_key"])),
            "block_document_references" => Dict{String,Any}("credentials" => Dict{String,Any}("block_document" =>
                Dict{String,Any}("name" => "creds", "is_anonymous" => false, "block_type" => Dict{String,Any}("slug" => "aws-credentials")))))
        s3 = makeblock("s3-bucket/b", "s3-bucket", s3doc)
        @test s3 isa S3BucketBlock && s3.bucket_name == "bkt" && s3.bucket_folder == "f"
        @test s3.credentials isa AWSCredentialsBlock && s3.credentials.blockname == "aws-credentials/creds"
        @test secretvalue(s3.credentials.aws_secret_access_key) == "sk-12345"
        @test !occursin("sk-12345", repr(s3) * sprint(dump, s3))
        g = makeblock("weird-type/w", "weird-type", Dict{String,Any}(
            "data" => Dict{String,Any}("url" => "http://x", "token" => "tok-98765", "nested" => Dict{String,Any}("k" => "v")),
            "block_schema" => Dict{String,Any}("fields" => Dict{String,Any}("secret_fields" => ["token", "nested.*"]))))
        @test g isa GenericBlock && g.slug == "weird-type" && g.url == "http://x"
        @test g.token isa SecretValue && secretvalue(g.token) == "tok-98765"
        @test g.nested["k"] isa SecretValue
        @test :url in propertynames(g)
        @test !occursin("tok-98765", repr(g) * sprint(dump, g))
        @test_throws ArgumentError g.missing_field
        # Odd documents never crash.
        @test makeblock("x/y", "x", Dict{String,Any}("data" => nothing)) isa GenericBlock
        @test makeblock("x/y", "x", Dict{String,Any}()) isa GenericBlock
        @test makeblock("secret/y", "secret", Dict{String,Any}("data" => Dict{String,Any}())) isa SecretBlock
    end

    @testset "PrefectAPI settings and headers" begin
        env = Dict("PREFECT_API_URL" => "http://127.0.0.1:4200/api/")
        api = PrefectAPI(; env=env)
        @test api.url == "http://127.0.0.1:4200/api"
        @test !any(h -> lowercase(h[1]) == "authorization", request_headers(api))
        @test PrefectAPI("http://other/api"; env=env).url == "http://other/api"
        e = try
            PrefectAPI(; env=Dict{String,String}())
        catch err
            err
        end
        @test e isa MissingEnvError && e.name == "PREFECT_API_URL" && occursin("PREFECT_API_URL=http", errtext(e))
        @test isempty(PrefectAPI(; env=Dict("PREFECT_API_URL" => "http://x", "PREFECT_API_KEY" => "")).key)
        k = PrefectAPI(; env=Dict("PREFECT_API_URL" => "http://x", "PREFECT_API_KEY" => "pnu_key"))
        @test ("Authorization" => "Bearer pnu_key") in request_headers(k)
        a = PrefectAPI(; env=Dict("PREFECT_API_URL" => "http://x", "PREFECT_API_AUTH_STRING" => "admin:pass"))
        @test ("Authorization" => "Basic YWRtaW46cGFzcw==") in request_headers(a)
        both = PrefectAPI(; env=Dict("PREFECT_API_URL" => "http://x", "PREFECT_API_KEY" => "k1", "PREFECT_API_AUTH_STRING" => "a:b"))
        @test count(h -> h[1] == "Authorization", request_headers(both)) == 1
        @test PI.redact_url("http://user:pw@host/api") == "http://****@host/api"
    end

    @testset "HTTP: retries on 5xx and connection errors, none on 4xx" begin
        # First the CSRF token request (422: the server has no CSRF protection, so no token is sent).
        srv = fakeserver([(422, "{}"), (503, "{\"detail\":\"busy\"}"), (502, "{}"), (200, "{\"ok\":true}")])
        try
            api = PrefectAPI(srv.url; retries=3, backoff=0.01, env=Dict{String,String}())
            @test apijson(api, "POST", "/things/filter"; body=Dict("limit" => 1)) == Dict("ok" => true)
            @test length(srv.requests) == 4
            @test startswith(srv.requests[1].line, "GET /api/csrf-token?client=")
            r = srv.requests[2]
            @test !any(h -> startswith(lowercase(h), "prefect-csrf"), r.headers)
            @test r.line == "POST /api/things/filter HTTP/1.1"
            @test parsejson(r.body) == Dict("limit" => 1)
            @test any(h -> lowercase(h) == "content-type: application/json", r.headers)
            @test !any(h -> startswith(lowercase(h), "authorization"), r.headers)
        finally
            srv.close()
        end
        # With CSRF protection: the token goes with every POST; a refused (expired) token is renewed once.
        srv = fakeserver([(200, "{\"token\":\"tok1\"}"), (403, "{}"), (200, "{\"token\":\"tok2\"}"), (200, "{\"ok\":true}")])
        try
            api = PrefectAPI(srv.url; retries=0, env=Dict("PREFECT_API_AUTH_STRING" => "admin:pass"))
            @test apijson(api, "POST", "/things/filter"; body=Dict("limit" => 1)) == Dict("ok" => true)
            @test [split(q.line)[1] for q in srv.requests] == ["GET", "POST", "GET", "POST"]
            @test all(q -> any(h -> lowercase(h) == "authorization: basic ywrtaw46cgfzcw==", q.headers), srv.requests)
            @test any(h -> lowercase(h) == "prefect-csrf-token: tok1", srv.requests[2].headers)
            @test any(h -> lowercase(h) == "prefect-csrf-token: tok2", srv.requests[4].headers)
            client = PI.csrf_client()
            @test occursin("client=" * client, srv.requests[1].line)
            @test any(h -> lowercase(h) == "prefect-csrf-client: " * client, srv.requests[4].headers)
        finally
            srv.close()
        end
        # Julia 1.6+ sends through the Downloads standard library (loaded by UUID, undeclared), 1.5 through curl.
        if VERSION >= v"1.6"
            @test PI.DOWNLOADS[] isa Module && nameof(PI.DOWNLOADS[]) == :Downloads
        else
            @test PI.DOWNLOADS[] === nothing          # never looked for
        end
        srv = fakeserver([(500, "{\"detail\":\"boom\"}")])
        try
            api = PrefectAPI(srv.url; retries=2, backoff=0.01, env=Dict{String,String}())
            e = try
                apijson(api, "GET", "/x")
            catch err
                err
            end
            @test e isa PrefectAPIError && e.status == 500 && occursin("boom", errtext(e))
            @test length(srv.requests) == 3
        finally
            srv.close()
        end
        for (status, T) in ((400, PrefectAPIError), (422, PrefectAPIError), (401, UnauthorizedError), (403, UnauthorizedError))
            srv = fakeserver([(status, "{\"detail\":\"no\"}")])
            try
                api = PrefectAPI(srv.url; key="pnu_secret_key", retries=3, backoff=0.01, env=Dict{String,String}())
                e = try
                    apijson(api, "GET", "/x")
                catch err
                    err
                end
                @test e isa T
                @test length(srv.requests) == 1
                @test any(h -> h == "Authorization: Bearer pnu_secret_key", srv.requests[1].headers)
                @test !occursin("pnu_secret_key", errtext(e))
                T === UnauthorizedError && @test occursin("PREFECT_API_KEY", errtext(e))
            finally
                srv.close()
            end
        end
        srv = fakeserver([(404, "{\"detail\":\"Block document not found\"}")])
        try
            api = PrefectAPI(srv.url; retries=3, backoff=0.01, env=Dict{String,String}())
            @test apijson(api, "GET", "/x"; notfound=:none) === :none
            @test length(srv.requests) == 1
            e = try
                apijson(PrefectAPI(srv.url; retries=0, env=Dict{String,String}()), "GET", "/x")
                getvariable("nope"; api=PrefectAPI(srv.url; retries=0, env=Dict{String,String}()))
            catch err
                err
            end
            @test e isa VariableNotFoundError && occursin("default=", errtext(e))
            @test getvariable("nope"; default=7, api=PrefectAPI(srv.url; retries=0, env=Dict{String,String}())) == 7
        finally
            srv.close()
        end
        srv = fakeserver([(401, "{}")])
        try
            e = try
                PrefectBlock("secret/x"; api=PrefectAPI(srv.url; env=Dict{String,String}()))
            catch err
                err
            end
            @test e isa UnauthorizedError && occursin("no credential was sent", errtext(e))
        finally
            srv.close()
        end
        # Connection refused: a port nobody listens on.
        s = listen(Sockets.localhost, 0)
        port = Int(getsockname(s)[2])
        close(s)
        url = "http://127.0.0.1:$port/api"
        t = @elapsed e = try
            PrefectBlock("secret/x"; api=PrefectAPI(url; retries=2, backoff=0.05, patience=0, env=Dict{String,String}()))
        catch err
            err
        end
        @test e isa PrefectConnectionError
        @test occursin("127.0.0.1:$port", errtext(e)) && occursin("PREFECT_API_URL", errtext(e))
        @test t >= 0.15         # two backoffs: 0.05 + 0.1
    end

    @testset "HTTP: patience rides out a server that is down or busy" begin
        noenv = Dict{String,String}()
        @test PrefectAPI("http://x/api"; env=noenv).patience == 60.0
        @test PrefectAPI("http://x/api"; env=Dict("PREFECT_JULIA_API_PATIENCE" => "7.5")).patience == 7.5
        @test PrefectAPI("http://x/api"; patience=2, env=Dict("PREFECT_JULIA_API_PATIENCE" => "7.5")).patience == 2.0
        @test_throws ArgumentError PrefectAPI("http://x/api"; env=Dict("PREFECT_JULIA_API_PATIENCE" => "soon"))
        # 503/504 are tried again past `retries` while patience lasts; a 500 is not.
        for (patience, expected) in ((30, 3), (0, 1))
            srv = fakeserver([(503, "{}"), (504, "{}"), (200, "{\"ok\":true}")])
            try
                api = PrefectAPI(srv.url; retries=0, backoff=0.01, patience=patience, env=noenv)
                res = apirequest(api, "GET", "/x")
                @test length(srv.requests) == expected
                @test res.status == (patience > 0 ? 200 : 503)
            finally
                srv.close()
            end
        end
        srv = fakeserver([(500, "{}"), (200, "{}")])
        try
            @test apirequest(PrefectAPI(srv.url; retries=0, patience=30, env=noenv), "GET", "/x").status == 500
        finally
            srv.close()
        end
        # A server that is down at first and then comes up on the same port: the request goes through, and a
        # POST carries the CSRF token the server hands out once it is up.
        s = listen(Sockets.localhost, 0)
        port = Int(getsockname(s)[2])
        close(s)
        url = "http://127.0.0.1:$port/api"
        delete!(PI.CSRF_TOKENS, url)            # a fake server of a test above may have had this port
        before = PI.REQUESTS_SENT[]
        up = Ref{Any}(nothing)
        starter = @async begin
            while PI.REQUESTS_SENT[] < before + 2      # two refused tries, then the server comes up
                sleep(0.01)
            end
            up[] = fakeserver(port=port) do request                 # a server with CSRF protection
                startswith(request.line, "GET") && return (200, "{\"token\":\"tok-after-outage\"}")
                signed = any(h -> lowercase(h) == "prefect-csrf-token: tok-after-outage", request.headers)
                return signed ? (200, "{\"ok\":true}") : (403, "{}")
            end
        end
        api = PrefectAPI(url; retries=0, backoff=0.05, patience=60, env=noenv)
        @test apijson(api, "POST", "/things/filter"; body=Dict("limit" => 1)) == Dict("ok" => true)
        wait(starter)
        try
            @test PI.REQUESTS_SENT[] - before >= 2             # a refused try before the server came up
            @test split(up[].requests[end].line)[1] == "POST"
            @test any(h -> lowercase(h) == "prefect-csrf-token: tok-after-outage", up[].requests[end].headers)
        finally
            up[].close()
        end
        # Past its patience a job fails, naming the server and the kit's command that starts it.
        before = PI.REQUESTS_SENT[]
        e = try
            apijson(PrefectAPI(url * "x"; retries=0, backoff=0.05, patience=0.3, env=noenv), "GET", "/x")
            nothing
        catch err
            err
        end
        @test e isa PrefectConnectionError
        @test PI.REQUESTS_SENT[] - before >= 2
        @test occursin("127.0.0.1:$port", errtext(e)) && occursin("invoke server-up ENV", errtext(e))
        @test !occursin("prefect server start", errtext(e))
    end

    @testset "dataset paths: shared vectors" begin
        # A copy of the repository's tests/vectors/dataset_paths.json (a gate test keeps them identical).
        vec = parsejson(read(joinpath(@__DIR__, "vectors", "dataset_paths.json"), String))
        today = Date(vec["today"])
        @test length(vec["cases"]) >= 10
        for case in vec["cases"]
            input = Dict(Symbol(k) => v for (k, v) in case["input"])
            env = Dict{String,String}()
            if haskey(case, "error")
                e = try
                    Dataset(; today=today, env=env, input...)
                catch err
                    err
                end
                ok = e isa DatasetError && e.field == case["error"] && occursin(case["error"], errtext(e))
                ok || @info "dataset vector failed" case["label"] e
                @test ok
            else
                ds = Dataset(; today=today, env=env, input...)
                x = case["expect"]
                ok = ds.rundate_type == x["rundate_type"] && dated_path(ds) == x["dated_path"] &&
                     latest_path(ds) == x["latest_path"] && read_path(ds) == x["read_path"] &&
                     write_paths(ds) == x["write_paths"]
                ok || @info "dataset vector failed" case["label"] ds
                @test ok
                @test ds.datastore_type == get(case["input"], "datastore_type", "local")
            end
        end
    end

    @testset "dataset defaults and validation" begin
        ds = Dataset("iris"; env=Dict{String,String}())
        @test ds.rundate == Dates.today() && ds.rundate_type == "latest" && ds.datastore_type == "local"
        @test ds.dataset_type == "extracts" && ds.file_format == "csv"
        @test Dataset("iris"; env=Dict("PREFECT_DATASTORE_DEFAULT_TYPE" => "remote")).datastore_type == "remote"
        e = try
            Dataset("iris"; env=Dict("PREFECT_DATASTORE_DEFAULT_TYPE" => "cloud"))
        catch err
            err
        end
        @test e isa DatasetError && e.field == "datastore_type" && occursin("PREFECT_DATASTORE_DEFAULT_TYPE", errtext(e))
        @test Dataset("iris"; rundate=Date(2026, 1, 2), today=Date(2026, 1, 3), env=Dict{String,String}()).rundate_type == "specific"
        for bad in ["2026-02-30", "2026-1-02", "", "20260102"]
            @test_throws DatasetError Dataset("iris"; rundate=bad, env=Dict{String,String}())
        end
        e = try
            Dataset("a/b")
        catch err
            err
        end
        @test occursin("dataset_name", errtext(e)) && occursin("'/'", errtext(e))
    end

    @testset "local files: atomic writes, datasets, CSV" begin
        dir = mktempdir()
        block = LocalFSBlock("local-file-system/test", dir)
        p = write(block, "a/b/c.txt", "hello")
        @test p == joinpath(dir, "a", "b", "c.txt") && read(block, "a/b/c.txt", String) == "hello"
        write(block, "a/b/c.txt", IOBuffer("from io"))
        @test read(block, "a/b/c.txt", String) == "from io"
        write(block, "a/b/c.txt", Vector{UInt8}("bytes"))
        @test read(block, "a/b/c.txt") == Vector{UInt8}("bytes")
        @test_throws ArgumentError write(block, "../escape.txt", "x")
        @test_throws ArgumentError write(block, "/abs.txt", "x")
        # A failed write leaves the previous file and no temporary file.
        @test_throws ArgumentError write(block, "a/b/c.txt", 12345)
        @test read(block, "a/b/c.txt", String) == "bytes"
        @test readdir(joinpath(dir, "a", "b")) == ["c.txt"]

        today = Date(2026, 11, 21)
        ds = Dataset("iris"; today=today, env=Dict{String,String}())
        written = write(ds, "v1"; block=block)
        @test written == [joinpath(dir, p) for p in reverse(write_paths(ds))] && length(written) == 2
        @test written[1] == joinpath(dir, latest_path(ds))        # latest first, as PrefectInterfaces.jl
        # the dated file is written before latest: with latest unwritable, the dated file is new already
        latestfile = joinpath(dir, latest_path(ds))
        mv(latestfile, latestfile * ".keep"); mkpath(joinpath(latestfile, "blocker"))
        @test_throws Exception write(ds, "v2"; block=block)
        @test read(joinpath(dir, dated_path(ds)), String) == "v2"
        rm(latestfile; recursive=true); mv(latestfile * ".keep", latestfile)
        write(ds, "v1"; block=block)
        @test read(ds, String; block=block) == "v1"
        past = Dataset("iris"; rundate="2026-11-01", today=today, env=Dict{String,String}())
        write(past, "old"; block=block)
        @test read(past, String; block=block) == "old"
        @test read(ds, String; block=block) == "v1"            # latest untouched by a specific write
        forced = Dataset("iris"; rundate="2026-11-01", rundate_type="latest", today=today, env=Dict{String,String}())
        write(forced, "v2"; block=block)
        @test read(ds, String; block=block) == "v2"
        @test read(past, String; block=block) == "old"
        @test datasetpath(ds; block=block) == joinpath(dir, latest_path(ds))
        @test datasetpath(ds; which=:dated, block=block) == joinpath(dir, dated_path(ds))

        table = Any[1 "a,b" 2.5; 2 "say \"hi\"" -1.0; 3 "plain" 0.0]
        writecsv(ds, table; header=["id", "text", "value"], block=block)
        data, header = readcsv(ds; block=block)
        @test header == ["id", "text", "value"]
        @test size(data) == (3, 3) && data[:, 1] == [1, 2, 3] && data[1, 2] == "a,b" && data[2, 2] == "say \"hi\""
        @test data[:, 3] == [2.5, -1.0, 0.0]

        e = try
            datastore_block(ds; env=Dict{String,String}())
        catch err
            err
        end
        @test e isa MissingEnvError && e.name == "PREFECT_DATA_BLOCK_LOCAL" && occursin("local-file-system/", errtext(e))
        remote = Dataset("iris"; datastore_type="remote", env=Dict{String,String}())
        e = try
            datastore_block(remote; env=Dict("PREFECT_DATA_BLOCK_LOCAL" => "local-file-system/x"))
        catch err
            err
        end
        @test e isa MissingEnvError && e.name == "PREFECT_DATA_BLOCK_REMOTE"

        s3 = S3BucketBlock("s3-bucket/b", "bkt", "folder/", nothing)
        @test s3.blocktype == "s3-bucket" && s3.region_name === nothing
        @test datasetpath(ds; block=s3) == "s3://bkt/folder/" * latest_path(ds)
        e = try
            read(ds; block=s3)
        catch err
            err
        end
        @test e isa S3Error && e.kind === :credentials && occursin("no credentials", errtext(e))
    end

    @testset "dataset fallback: shared vectors (the base's data)" begin
        vec = parsejson(read(joinpath(@__DIR__, "vectors", "dataset_paths.json"), String))
        fb, today = vec["fallback"], Date(vec["today"])
        @test length(fb["cases"]) >= 6
        snapshot(root) = Dict(relpath(joinpath(d, f), root) => (read(joinpath(d, f)), mtime(joinpath(d, f)))
                              for (d, _, fs) in walkdir(root) for f in fs)
        for case in fb["cases"]
            own, base = mktempdir(), mktempdir()
            for (root, word) in ((own, "own"), (base, "base")), rel in case[word]
                mkpath(dirname(joinpath(root, rel)))
                write(joinpath(root, rel), word)
            end
            env = case["fallback"] ? Dict("PREFECT_DATA_FALLBACK_ROOT" => base, "PREFECT_DATA_FALLBACK_NAME" => fb["name"]) :
                  Dict{String,String}()
            input = Dict(Symbol(k) => v for (k, v) in case["input"])
            ds = Dataset(; today=today, env=env, input...)
            block = LocalFSBlock("local-file-system/own", own)
            x = case["expect"]
            before = snapshot(base)
            logger = Test.TestLogger(min_level=Logging.Info)
            got = Logging.with_logger(logger) do
                try
                    read(ds, String; block=block, env=env)
                catch err
                    err isa SystemError || rethrow()
                    "missing"
                end
            end
            lines = [string(r.message) for r in logger.logs if occursin(fb["log"], string(r.message))]
            ok = got == x["reads"] && length(lines) == (x["log"] ? 1 : 0) &&
                 (!x["log"] || occursin(joinpath(base, read_path(ds)), lines[1])) &&
                 rundates(ds; block=block, env=env) == x["rundates"] &&
                 rundates(ds; fallback=false, block=block, env=env) == x["own_rundates"] &&
                 snapshot(base) == before
            ok || @info "fallback vector failed" case["label"] got lines
            @test ok
        end
    end

    @testset "dataset fallback: datasetpath, writes, the own store as base, a relative root" begin
        own, base = mktempdir(), mktempdir()
        today = Date(2026, 11, 21)
        env = Dict("PREFECT_DATA_FALLBACK_ROOT" => base, "PREFECT_DATA_FALLBACK_NAME" => "dev")
        block = LocalFSBlock("local-file-system/own", own)
        ds = Dataset("iris"; today=today, env=env)
        mkpath(dirname(joinpath(base, latest_path(ds))))
        write(joinpath(base, latest_path(ds)), "base")
        @test datasetpath(ds; block=block, env=env) == joinpath(base, latest_path(ds))
        @test datasetpath(ds; which=:latest, block=block, env=env) == joinpath(own, latest_path(ds))
        @test readcsv(ds; header=false, block=block, env=env)[1] == reshape(Any["base"], 1, 1)
        # A write with a fallback set goes to the own store only, and reads then come from it.
        written = write(ds, "own"; block=block, env=env)
        @test all(p -> startswith(p, own * "/"), written) && length(written) == 2
        @test sort([relpath(joinpath(d, f), base) for (d, _, fs) in walkdir(base) for f in fs]) == [latest_path(ds)]
        @test read(joinpath(base, latest_path(ds)), String) == "base"
        @test read(ds, String; block=block, env=env) == "own"
        @test datasetpath(ds; block=block, env=env) == joinpath(own, latest_path(ds))
        # The own store named as the base is no fallback; a relative root is refused.
        @test PI.fallbackroot(ds, block, Dict("PREFECT_DATA_FALLBACK_ROOT" => own)) === nothing
        @test PI.fallbackroot(ds, block, Dict("PREFECT_DATA_FALLBACK_ROOT" => "")) === nothing
        @test PI.fallbackroot(ds, block, env) == base
        e = try
            read(ds, String; block=block, env=Dict("PREFECT_DATA_FALLBACK_ROOT" => "data/dev"))
        catch err
            err
        end
        @test e isa ArgumentError && occursin("PREFECT_DATA_FALLBACK_ROOT", e.msg) && occursin("absolute", e.msg)
    end

    @testset "bridge: parseargs and setresult" begin
        @test parseargs(["--a=1", "--b=", "--c=x=y", "--rundate=2026-11-21"]) ==
              Dict("a" => "1", "b" => "", "c" => "x=y", "rundate" => "2026-11-21")
        @test parseargs(String[]) == Dict{String,String}()
        for bad in ["a=1", "--a", "-a=1", "--=1", "--1a=2"]
            e = try
                parseargs([bad])
            catch err
                err
            end
            @test e isa ArgumentsError && occursin("--key=value", errtext(e))
        end
        @test_throws ArgumentsError parseargs(["--a=1", "--a=2"])
        dir = mktempdir()
        path = joinpath(dir, "result.json")
        value = Dict("rows" => 3, "names" => ["a", "b"], "ok" => true, "none" => nothing)
        @test setresult(value; env=Dict("PREFECT_JULIA_RESULT_PATH" => path)) === value
        @test parsejson(read(path, String)) == value
        @test setresult("x"; env=Dict{String,String}()) == "x"
        @test readdir(dir) == ["result.json"]
    end

    @testset "warm session: its own user only, programs from its folders only" begin
        dir = mktempdir()
        jobs = mkpath(joinpath(dir, "jobs"))
        write(joinpath(jobs, "ok.jl"), "1")
        write(joinpath(dir, "outside.jl"), "1")
        symlink(joinpath(dir, "outside.jl"), joinpath(jobs, "link.jl"))
        @test PI.program_allowed(joinpath(jobs, "ok.jl"), [jobs])
        @test PI.program_allowed(joinpath(jobs, "ok.jl"), [jobs * "/"])
        @test !PI.program_allowed(joinpath(dir, "outside.jl"), [jobs])
        @test !PI.program_allowed(joinpath(jobs, "..", "outside.jl"), [jobs])   # no way out through ".."
        @test !PI.program_allowed(joinpath(jobs, "link.jl"), [jobs])            # nor through a link
        @test !PI.program_allowed(joinpath(jobs, "missing.jl"), [jobs])
        @test !PI.program_allowed(joinpath(dir, "jobs2", "x.jl"), [jobs])
        @test PI.program_allowed(joinpath(dir, "outside.jl"), [jobs, dir])
        # The peer of a connection of this process is this process's user.
        path = joinpath(dir, "s.sock")
        server = Sockets.listen(path)
        client = Sockets.connect(path)
        peer = Sockets.accept(server)
        @test PI.peer_uid(peer) == ccall(:geteuid, Cuint, ()) && PI.refuse_peer(peer) === nothing
        foreach(close, (client, peer, server))
        # A session asked for a program outside its folders answers with a refusal and runs nothing.
        sock = joinpath(dir, "session.sock")
        served = @async PrefectInterfaces.serve_session(sock; idle=60, programs=[jobs])
        ask(program) = begin
            conn = Sockets.connect(sock)
            write(conn, json(Dict("program" => program, "args" => [], "env" => Dict(), "cwd" => dir)), "\n")
            answer = read(conn, String)
            close(conn)
            answer
        end
        timedwait(() -> ispath(sock), 30.0)
        answer = ask(joinpath(dir, "outside.jl"))
        @test startswith(answer, "2 session refused: the program $(joinpath(dir, "outside.jl")) is outside")
        @test occursin("PREFECT_JULIA_SESSION_PROGRAMS", answer) && endswith(answer, "x 1\n")
        rm(sock)  # the session notices its socket is gone and ends
        @test timedwait(() -> istaskdone(served), 30.0) == :ok
    end

    @testset "prefect log format" begin
        out = capturelog() do
            @info "hello" rows = 3 name = "x"
            @debug "hidden"
            @warn "careful"
            @error "failed" exception = ErrorException("boom")
            for _ in 1:3
                @info "once" maxlog = 1
            end
        end
        lines = split(strip(out), '\n')
        @test all(l -> startswith(l, "::prefect-log::{"), lines)
        recs = logrecords(out)
        @test [r["level"] for r in recs] == ["INFO", "WARNING", "ERROR", "INFO"]
        @test recs[1]["message"] == "hello rows=3 name=x"
        @test recs[1]["module"] == "Main" && endswith(recs[1]["file"], "runtests.jl") && recs[1]["line"] isa Int
        @test occursin("boom", recs[3]["message"])
        @test Set(keys(recs[1])) == Set(["level", "message", "module", "file", "line"])
        debug = IOBuffer()
        with_logger(PrefectLogger(debug; min_level=Logging.Debug)) do
            @debug "shown"
        end
        @test logrecords(String(take!(debug)))[1]["level"] == "DEBUG"

        # Installed at load time only when PREFECT_JULIA_LOG_FORMAT=prefect; JULIA_DEBUG enables debug.
        script = "using PrefectInterfaces; @info \"hi\" n=1; @debug \"dbg\"; println(typeof(Base.CoreLogging.global_logger()))"
        cmd = `$JULIA_CMD --startup-file=no --project=$(PKGDIR) -e $script`
        err = IOBuffer()
        out = read(pipeline(setenv(cmd, childenv("PREFECT_JULIA_LOG_FORMAT" => "prefect", "JULIA_DEBUG" => "Main")); stderr=err), String)
        recs = logrecords(String(take!(err)))
        @test occursin("PrefectLogger", out)
        @test [r["level"] for r in recs] == ["INFO", "DEBUG"] && recs[1]["message"] == "hi n=1"
        out = read(pipeline(setenv(cmd, childenv("PREFECT_JULIA_LOG_FORMAT" => nothing)); stderr=err), String)
        @test !occursin("PrefectLogger", out) && !occursin("::prefect-log::", String(take!(err)))
    end

    @testset "entry point: an uncaught error is one ERROR record, exit(n) stays n" begin
        dir = mktempdir()
        entry = "import PrefectInterfaces; PrefectInterfaces.runjob(popfirst!(ARGS))"
        function runentry(code, args...)
            path = joinpath(dir, "jobs", "job.jl")
            mkpath(dirname(path))
            write(path, code)
            cmd = `$JULIA_CMD --startup-file=no --project=$(PKGDIR) -e $entry $path $args`
            out, err = IOBuffer(), IOBuffer()
            proc = run(pipeline(ignorestatus(setenv(cmd, childenv("PREFECT_JULIA_LOG_FORMAT" => "prefect")));
                                stdout=out, stderr=err))
            return (code=proc.exitcode, out=String(take!(out)), err=String(take!(err)), path=path)
        end
        job = """
            using PrefectInterfaces
            @warn "before the error"
            println(ARGS, " ", abspath(PROGRAM_FILE) == @__FILE__)
            check(rows) = rows > 0 || error("bad data")
            check(0)
            """
        r = runentry(job, "--rows=0")
        @test r.code == 1
        @test strip(r.out) == "[\"--rows=0\"] true"
        lines = split(strip(r.err), '\n')
        @test all(l -> startswith(l, PI.LOG_PREFIX), lines)     # no plain "ERROR: LoadError" lines
        recs = logrecords(r.err)
        @test [x["level"] for x in recs] == ["WARNING", "ERROR"]
        err = recs[2]
        @test err["message"] == "bad data" && err["uncaught"] === true
        @test err["file"] == abspath(r.path) && err["line"] == 4
        trace = split(err["stacktrace"], '\n')
        @test trace[1] == "Stacktrace:" && length(trace) == 3          # check(), then the job's top level
        @test occursin("check(", trace[2]) && occursin("job.jl:4", trace[2]) && occursin("job.jl:5", trace[3])
        @test !occursin("runjob", err["stacktrace"]) && !occursin("error.jl", err["stacktrace"])
        # The package's own frames stay in the trace.
        r = runentry("using PrefectInterfaces\nparseargs([\"oops\"])\n")
        err = logrecords(r.err)[end]
        @test r.code == 1 && err["level"] == "ERROR" && startswith(err["message"], "ArgumentsError")
        @test occursin("parseargs", err["stacktrace"]) && err["line"] == 2
        # exit(n) ends the job with n, and no error record.
        r = runentry("println(\"leaving\")\nexit(3)\n")
        @test r.code == 3 && strip(r.out) == "leaving" && !occursin("ERROR", r.err)
        r = runentry("x = 1\n")
        @test r.code == 0 && isempty(r.err)
    end

    @testset "example job hello.jl" begin
        dir = mktempdir()
        path = joinpath(dir, "r.json")
        cmd = `$JULIA_CMD --startup-file=no --project=$(PKGDIR) $(joinpath(PKGDIR, "jobs", "hello.jl")) --name=tester --warn=w`
        err = IOBuffer()
        env = childenv("PREFECT_JULIA_LOG_FORMAT" => "prefect", "PREFECT_JULIA_RESULT_PATH" => path)
        run(pipeline(setenv(cmd, env); stderr=err))
        result = parsejson(read(path, String))
        @test result["greeting"] == "hello, tester" && result["args"]["warn"] == "w"
        @test [r["level"] for r in logrecords(String(take!(err)))] == ["INFO", "WARNING"]
    end

    @testset "error messages name the fix" begin
        @test occursin("secret/a, secret/b", errtext(BlockNotFoundError("secret/x", ["secret/a", "secret/b"])))
        @test occursin("ls()", errtext(BlockNotFoundError("nope/x", String[])))
        @test occursin("PREFECT_API_AUTH_STRING", errtext(UnauthorizedError("http://x", 401, "none")))
        @test occursin("invoke server-up ENV", errtext(PrefectConnectionError("http://h:1/api", "connection refused")))
        @test occursin("invoke blocks ENV", errtext(BlockNotFoundError("secret/x", ["secret/a"])))
        @test occursin("invoke blocks ENV", errtext(BlockNotFoundError("nope/x", String[])))
        @test occursin("invoke blocks ENV", errtext(VariableNotFoundError("v")))
        @test !any(e -> occursin("prefect ", errtext(e)), [PrefectConnectionError("http://h:1/api", "refused"),
            BlockNotFoundError("nope/x", String[]), VariableNotFoundError("v")])
        @test occursin("e.g.", errtext(MissingEnvError("X", "Set it, e.g. X=1.")))
        @test all(T -> T <: PrefectInterfacesError, [PrefectConnectionError, PrefectAPIError, UnauthorizedError,
            BlockNotFoundError, MalformedBlockNameError, VariableNotFoundError, MissingEnvError, DatasetError,
            ArgumentsError, UnsupportedBlockError, JSONError])
    end

    @testset "docstrings on every export" begin
        undocumented = [n for n in names(PrefectInterfaces) if n != :PrefectInterfaces &&
                        !haskey(Docs.meta(PrefectInterfaces), Docs.Binding(PrefectInterfaces, n))]
        isempty(undocumented) || @info "undocumented exports" undocumented
        @test isempty(undocumented)
    end
end

# --- integration tests (a real Prefect server) ------------------------------------------------------------

envvar(name) = haskey(ENV, name) && !isempty(ENV[name]) ? ENV[name] : error("integration tests need $name")

function integration_tests()
    api = PrefectAPI()
    @testset "integration: blocks" begin
        lfs = PrefectBlock(envvar("PI_TEST_LFS_BLOCK"))
        @test lfs.block isa LocalFSBlock && lfs.basepath == envvar("PI_TEST_LFS_BASEPATH")
        sec = PrefectBlock(envvar("PI_TEST_SECRET_BLOCK"); api=api)
        @test sec.block isa SecretBlock && secretvalue(sec) == envvar("PI_TEST_SECRET_VALUE")
        @test !occursin(envvar("PI_TEST_SECRET_VALUE"), repr(sec) * sprint(dump, sec) * "$sec")
        jsec = PrefectBlock(envvar("PI_TEST_JSON_SECRET_BLOCK"))
        @test secretvalue(jsec) == parsejson(envvar("PI_TEST_JSON_SECRET_JSON"))
        g = PrefectBlock(envvar("PI_TEST_GENERIC_BLOCK"))
        @test g.block isa GenericBlock && g.slug == first(split(envvar("PI_TEST_GENERIC_BLOCK"), '/'))
        @test g.url == envvar("PI_TEST_GENERIC_URL")
        @test g.token isa SecretValue && secretvalue(g.token) == envvar("PI_TEST_GENERIC_TOKEN")
        @test !occursin(envvar("PI_TEST_GENERIC_TOKEN"), repr(g) * sprint(dump, g))
        s3 = PrefectBlock(envvar("PI_TEST_S3_BLOCK"))
        @test s3.block isa S3BucketBlock && s3.bucket_name == envvar("PI_TEST_S3_BUCKET")
        @test s3.credentials isa AWSCredentialsBlock && s3.credentials.blockname == envvar("PI_TEST_AWS_BLOCK")
        @test secretvalue(s3.credentials.aws_secret_access_key) == envvar("PI_TEST_AWS_SECRET")
        aws = PrefectBlock(envvar("PI_TEST_AWS_BLOCK"))
        @test aws.block isa AWSCredentialsBlock && aws.region_name == envvar("PI_TEST_AWS_REGION")
        @test !occursin(envvar("PI_TEST_AWS_SECRET"), repr(s3) * repr(aws) * sprint(dump, s3))

        e = try
            PrefectBlock("secret/does-not-exist")
        catch err
            err
        end
        @test e isa BlockNotFoundError && envvar("PI_TEST_SECRET_BLOCK") in e.existing
        @test occursin(envvar("PI_TEST_SECRET_BLOCK"), errtext(e))
        @test_throws BlockNotFoundError PrefectBlock("no-such-type/x")
    end

    @testset "integration: ls pages through every block" begin
        all1 = ls()
        small = ls(; page_size=3)
        @test small == all1
        n = parse(Int, envvar("PI_TEST_PAGING_COUNT"))
        prefix = envvar("PI_TEST_PAGING_PREFIX")
        @test count(b -> startswith(b, prefix), small) == n
        @test n > 3
        for name in ("PI_TEST_LFS_BLOCK", "PI_TEST_SECRET_BLOCK", "PI_TEST_GENERIC_BLOCK", "PI_TEST_S3_BLOCK")
            @test envvar(name) in small
        end
        @test ls(; type="secret", page_size=1) == filter(b -> startswith(b, "secret/"), all1)
    end

    @testset "integration: variables" begin
        @test getvariable(envvar("PI_TEST_VARIABLE")) == parsejson(envvar("PI_TEST_VARIABLE_JSON"))
        @test getvariable(envvar("PI_TEST_STRING_VARIABLE")) == envvar("PI_TEST_STRING_VARIABLE_VALUE")
        @test getvariable("no_such_variable_here"; default=nothing) === nothing
        @test_throws VariableNotFoundError getvariable("no_such_variable_here")
    end

    @testset "integration: datasets through PREFECT_DATA_BLOCK_LOCAL" begin
        ds = Dataset("integration"; datastore_type="local")
        paths = write(ds, "a,b\n1,2\n")
        @test all(startswith(envvar("PI_TEST_LFS_BASEPATH")), paths) && length(paths) == 2
        @test read(ds, String) == "a,b\n1,2\n"
        data, header = readcsv(ds)
        @test header == ["a", "b"] && data == Any[1 2]
        @test datasetpath(ds) == joinpath(envvar("PI_TEST_LFS_BASEPATH"), latest_path(ds))
    end

    @testset "integration: warm block lookup" begin
        name = envvar("PI_TEST_LFS_BLOCK")
        PrefectBlock(name; api=api)
        t = @elapsed for _ in 1:5
            PrefectBlock(name; api=api)
        end
        @info "warm block lookup" seconds_each = round(t / 5; digits=4)
        @test t / 5 < 2.0
    end
end

# --- run ------------------------------------------------------------------------------------------------------

include("compat.jl")

@testset "PrefectInterfaces" begin
    unit_tests()
    compat_unit_tests()
    if isempty(get(ENV, "PREFECT_API_URL", ""))
        println("Integration tests skipped: PREFECT_API_URL is not set (tests/test_julia_suite.py runs them against a real server).")
    else
        println("Integration tests against ", PI.redact_url(ENV["PREFECT_API_URL"]))
        integration_tests()
        compat_integration_tests()
    end
end
