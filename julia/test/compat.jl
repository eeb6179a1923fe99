# The API of PrefectInterfaces.jl (v0.3.2), called the way its users and its own test files call it:
# every public name, its constructors' argument orders, fields and return shapes. Included by runtests.jl.
# Where this package deliberately differs (typed errors instead of `nothing`, masked JSON secrets, bytes
# instead of DataFrames without the DataFrames/CSV extension), the tests check this package's behaviour;
# MIGRATING.md lists each difference.

using PrefectInterfaces.Datasets

const COMPAT_CSV = "item,qty,price\nB001,3,1.5\nB002,1,20.0\nB003,7,0.25\n"

withtempenv(f, pairs...) = withenv(f, pairs...)

function compat_unit_tests()
    @testset "compat: abstract types" begin
        @test AbstractPrefectBlock <: AbstractPrefectInterface
        for T in (PrefectBlock, LocalFSBlock, SecretBlock, AWSCredentialsBlock, S3BucketBlock, StringBlock,
                  CredentialPairBlock, GenericBlock)
            @test T <: AbstractPrefectBlock
        end
        @test PrefectAPI <: PrefectInterfaces.AbstractPrefectConfig <: AbstractPrefectInterface && Dataset <: AbstractPrefectInterface
        @test Datasets.PrefectDatastoreNames <: AbstractPrefectInterface
    end

    @testset "compat: SecretString" begin
        password = SecretString("abcd1234")
        @test typeof(password) == SecretString
        @test fieldnames(SecretString) == (:secret,)
        @test password.secret == "abcd1234"
        @test repr(password) == "####Secret####"
        @test sprint(show, password) == "####Secret####" && "$password" == "####Secret####"
        @test !occursin("abcd1234", sprint(dump, password))
        @test secretvalue(password) == "abcd1234"
        @test json(Dict("p" => password)) == "{\"p\":\"********\"}"
        out = capturelog() do
            @info "typed by hand: abcd1234" password
        end
        @test !occursin("abcd1234", out)
    end

    @testset "compat: block types and constructor orders" begin
        str = StringBlock("string/bytor", "string", "a special string")
        @test typeof(str) == StringBlock
        @test fieldnames(StringBlock) == (:blockname, :blocktype, :value)
        @test str.blockname == "string/bytor" && str.blocktype == "string" && str.value == "a special string"

        secretblock = SecretBlock("secret", "necromancer", "abcd1234")
        @test typeof(secretblock) == SecretBlock
        @test repr(secretblock.value) == "####Secret####"
        @test secretblock.value.secret == "abcd1234"
        @test !occursin("abcd1234", sprint(dump, secretblock) * repr(secretblock) * "$secretblock")
        @test secretblock.blockname == "secret" && secretblock.blocktype == "necromancer"

        awscredentials = AWSCredentialsBlock("aws-creds/signals", "aws-creds", "us-west-2",
                                             "AKIAXXXX1234XXXX1234", "GRU999999BOO")
        @test typeof(awscredentials) == AWSCredentialsBlock
        @test fieldnames(AWSCredentialsBlock)[1:5] ==
              (:blockname, :blocktype, :region_name, :aws_access_key_id, :aws_secret_access_key)
        @test awscredentials.region_name == "us-west-2"
        @test awscredentials.aws_access_key_id == "AKIAXXXX1234XXXX1234"
        @test awscredentials.aws_secret_access_key.secret == "GRU999999BOO"
        @test repr(awscredentials.aws_secret_access_key) == "####Secret####"
        @test !occursin("GRU999999BOO", repr(awscredentials) * sprint(dump, awscredentials))

        creds = CredentialPairBlock("credentialpair/strangiato", "credentialpair", "user123", "passW0rd")
        @test typeof(creds) == CredentialPairBlock
        @test fieldnames(CredentialPairBlock) == (:blockname, :blocktype, :id, :secret_key)
        @test creds.blocktype == "credentialpair" && creds.id == "user123"
        @test creds.secret_key.secret == "passW0rd"
        @test repr(creds.secret_key) == "####Secret####"

        s3bucket = S3BucketBlock("s3-bucket/willowdata", "s3-bucket", "cygnus-x1", "willowdata/dev",
                                 "us-west-2", "AKIAXXXX1234XXXX1234", "GRU999999BOO")
        @test typeof(s3bucket) == S3BucketBlock
        @test s3bucket.blockname == "s3-bucket/willowdata" && s3bucket.blocktype == "s3-bucket"
        @test s3bucket.bucket_name == "cygnus-x1" && s3bucket.bucket_folder == "willowdata/dev"
        @test s3bucket.region_name == "us-west-2"
        @test s3bucket.aws_access_key_id == "AKIAXXXX1234XXXX1234"
        @test s3bucket.aws_secret_access_key.secret == "GRU999999BOO"
        @test repr(s3bucket.aws_secret_access_key) == "####Secret####"
        for p in (:blockname, :blocktype, :bucket_name, :bucket_folder, :region_name, :aws_access_key_id,
                  :aws_secret_access_key, :read_path, :write_path)
            @test p in propertynames(s3bucket)
        end
        @test !occursin("GRU999999BOO", repr(s3bucket) * sprint(dump, s3bucket))
    end

    @testset "compat: LocalFSBlock read_path/write_path" begin
        tmp_basepath = mktempdir()
        writeblock = LocalFSBlock("local-file-system/xanadu", "local-file-system", tmp_basepath)
        @test propertynames(writeblock) == (:blockname, :blocktype, :basepath, :read_path, :write_path)
        key = "local-fs-block/data.csv"
        path = writeblock.write_path(key, COMPAT_CSV)
        @test path == joinpath(tmp_basepath, key) && isfile(path)
        @test writeblock.read_path(key) == Vector{UInt8}(COMPAT_CSV)    # bytes without DataFrames/CSV
        @test write_path(writeblock, key, Vector{UInt8}("x\n1\n")) == path
        @test String(read_path(writeblock, key)) == "x\n1\n"
        @test_throws ArgumentError writeblock.write_path("../outside.csv", COMPAT_CSV)
        @test_throws ArgumentError writeblock.write_path(key, 42)      # not bytes, text, IO or a table
        @test String(read_path(writeblock, key)) == "x\n1\n"
    end

    @testset "compat: PrefectBlock(name, block) on no server" begin
        spec_fsblock = LocalFSBlock("local-file-system/xanadu", "local-file-system", "/usr/mahiki/xanadu/dev")
        fsblock = PrefectBlock("local-file-system/xanadu", spec_fsblock)
        @test typeof(fsblock) == PrefectBlock
        @test fieldnames(typeof(fsblock)) == (:blockname, :block)
        @test fsblock.blockname == "local-file-system/xanadu"
        @test propertynames(fsblock.block) == (:blockname, :blocktype, :basepath, :read_path, :write_path)
        @test fsblock.block.basepath == "/usr/mahiki/xanadu/dev"
        @test fsblock.basepath == "/usr/mahiki/xanadu/dev"                 # reads through to the block
        @test PrefectBlock("local-file-system/xanadu", fsblock) == fsblock
        @test eval(Meta.parse(repr(fsblock))) == fsblock
        sb = PrefectBlock("secret/x", SecretBlock("secret/x", "secret", "hunter2-compat"))
        @test secretvalue(sb) == "hunter2-compat" && !occursin("hunter2", repr(sb) * sprint(dump, sb))
    end

    @testset "compat: makeblock(dict)" begin
        doc = Dict{String,Any}("name" => "willowdata", "block_type" => Dict{String,Any}("slug" => "local-file-system"),
                               "data" => Dict{String,Any}("basepath" => "/data/willow"))
        b = makeblock(doc)
        @test typeof(b) == LocalFSBlock && b.blockname == "local-file-system/willowdata" && b.basepath == "/data/willow"
        sdoc = Dict{String,Any}("name" => "syrinx", "block_type" => Dict{String,Any}("slug" => "string"),
                                "data" => Dict{String,Any}("value" => "dev"))
        @test makeblock(sdoc) == StringBlock("string/syrinx", "string", "dev")
        cdoc = Dict{String,Any}("name" => "c", "block_type" => Dict{String,Any}("slug" => "credentialpair"),
                                "data" => Dict{String,Any}("id" => "u", "secret_key" => "k-compat-1"))
        @test makeblock(cdoc) == CredentialPairBlock("credentialpair/c", "credentialpair", "u", "k-compat-1")
        @test_throws ArgumentError makeblock(Dict{String,Any}("data" => Dict{String,Any}()))
    end

    @testset "compat: PrefectAPI" begin
        withtempenv("PREFECT_API_URL" => "http://127.0.0.1:4300/api", "PREFECT_API_KEY" => nothing,
                    "PREFECT_API_AUTH_STRING" => nothing) do
            api = PrefectAPI()
            @test api.url == "http://127.0.0.1:4300/api" && typeof(api) == PrefectAPI
            @test PrefectAPI("http://127.0.0.1:4444/api").url == "http://127.0.0.1:4444/api"
            @test PrefectAPI("http://127.0.0.1:4444/api").key.secret == ""
        end
        api = PrefectAPI("https://api.prefect.cloud/api/accounts/0eEXAMPLE", "abcd1234")
        @test api.url == "https://api.prefect.cloud/api/accounts/0eEXAMPLE"
        @test repr(api.key) == "####Secret####" && api.key.secret == "abcd1234"
        @test ("Authorization" => "Bearer abcd1234") in request_headers(api)
        api.url = "http://127.0.0.1:4555/api"
        api.key = SecretString("zyxw4321")
        @test api.url == "http://127.0.0.1:4555/api" && api.key.secret == "zyxw4321"
        @test ("Authorization" => "Bearer zyxw4321") in request_headers(api)
        api.key = ""
        @test !any(h -> h[1] == "Authorization", request_headers(api))
        @test !occursin("zyxw4321", repr(api) * sprint(dump, api))
    end

    @testset "compat: Datasets.PrefectDatastoreNames" begin
        withtempenv("PREFECT_DATA_BLOCK_REMOTE" => "s3-bucket/willowdata", "PREFECT_DATA_BLOCK_LOCAL" => "local-file-system/willowdata",
                    "PREFECT_DATASTORE_DEFAULT_TYPE" => nothing) do
            dst = Datasets.PrefectDatastoreNames()
            @test propertynames(dst) == (:remote, :local, :default)
            @test dst.remote == "s3-bucket/willowdata" && dst.local == "local-file-system/willowdata"
            @test dst.default == "local" && typeof(dst) == Datasets.PrefectDatastoreNames
            ndst = Datasets.PrefectDatastoreNames("s3/barchetta", "lfs/spirit-of-radio")
            @test ndst.remote == "s3/barchetta" && ndst.local == "lfs/spirit-of-radio" && ndst.default == "local"
            ndst.default = "remote"
            @test ndst.default == "remote"
        end
        withtempenv("PREFECT_DATA_BLOCK_REMOTE" => nothing, "PREFECT_DATA_BLOCK_LOCAL" => "local-file-system/x") do
            e = try
                Datasets.PrefectDatastoreNames()
            catch err
                err
            end
            @test e isa MissingEnvError && e.name == "PREFECT_DATA_BLOCK_REMOTE"
        end
    end

    @testset "compat: Dataset fields and rundate_path_selector" begin
        ds = Dataset(dataset_name="test_julia_dataset", datastore_type="local")
        @test typeof(ds) == Dataset
        for p in (:dataset_name, :datastore_type, :dataset_type, :file_format, :rundate, :rundate_type,
                  :dataset_path, :latest_path, :image_path)
            @test p in propertynames(ds)
        end
        @test ds.dataset_name == "test_julia_dataset" && ds.datastore_type == "local"
        @test ds.dataset_type == "extracts" && ds.file_format == "csv"
        @test ds.rundate == Dates.today() && ds.rundate_type == "latest"
        @test ds.dataset_path == "extracts/csv/dataset=test_julia_dataset/rundate=$(Dates.today())/data.csv"
        @test ds.latest_path == "extracts/csv/latest/dataset=test_julia_dataset/data.csv"
        @test ds.image_path == "extracts/dataset=test_julia_dataset/rundate=$(Dates.today())"
        @test eval(Meta.parse(repr(ds))) == ds

        d1 = Dataset(dataset_name="test_dataset_1", datastore_type="local")
        d2 = Dataset(dataset_name="test_dataset_2", rundate_type="latest", rundate=Date("2020-11-03"), datastore_type="local")
        d3 = Dataset(dataset_name="test_dataset_3", rundate_type="specific", rundate=Dates.today(), datastore_type="local")
        d4 = Dataset(dataset_name="test_dataset_4", rundate_type="specific", rundate=Date("2020-11-03"), datastore_type="local")
        t = Dates.today()
        @test Datasets.rundate_path_selector(d1) == (read="extracts/csv/latest/dataset=test_dataset_1/data.csv",
            write=["extracts/csv/latest/dataset=test_dataset_1/data.csv", "extracts/csv/dataset=test_dataset_1/rundate=$t/data.csv"])
        @test Datasets.rundate_path_selector(d2) == (read="extracts/csv/latest/dataset=test_dataset_2/data.csv",
            write=["extracts/csv/latest/dataset=test_dataset_2/data.csv"])
        @test Datasets.rundate_path_selector(d3) == (read="extracts/csv/dataset=test_dataset_3/rundate=$t/data.csv",
            write=["extracts/csv/dataset=test_dataset_3/rundate=$t/data.csv"])
        @test Datasets.rundate_path_selector(d4) == (read="extracts/csv/dataset=test_dataset_4/rundate=2020-11-03/data.csv",
            write=["extracts/csv/dataset=test_dataset_4/rundate=2020-11-03/data.csv"])
        @test rundate_path_selector(d1) == Datasets.rundate_path_selector(d1)     # exported by Datasets

        # read/write through a block on no server, as upstream's dataset tests do
        tmp_basepath = mktempdir()
        mock_fs_block = LocalFSBlock("local-file-system/working-man", "local-file-system", tmp_basepath)
        mock_pf_fsblock = PrefectBlock("local-file-system/working-man", mock_fs_block)
        datas = [d1, d2, d3, d4]
        paths = map(x -> write(x, COMPAT_CSV; block=mock_pf_fsblock), datas)
        @test all(x -> all(isfile, x), paths)
        @test paths[1] == ["$tmp_basepath/extracts/csv/latest/dataset=test_dataset_1/data.csv", "$tmp_basepath/$(d1.dataset_path)"]
        @test occursin("extracts/csv/latest/dataset=test_dataset_2/data.csv", paths[2][])
        read_back = map(x -> read(x, String; block=mock_pf_fsblock), datas)
        @test all(==(COMPAT_CSV), read_back)
        @test read(d1; block=mock_pf_fsblock) == Vector{UInt8}(COMPAT_CSV)      # bytes without DataFrames/CSV
        @test !isfile("$tmp_basepath/$(d2.dataset_path)")
        @test !isfile("$tmp_basepath/$(d3.latest_path)")
        @test !isfile("$tmp_basepath/$(d4.latest_path)")
        @test read(d4; block=mock_fs_block) == read(d4; block=mock_pf_fsblock)  # a typed block works as well
    end
end

function compat_integration_tests()
    ACTIVE_API = PrefectAPI(ENV["PREFECT_API_URL"])
    @testset "compat integration: ls, PrefectBlock, getblock, makeblock" begin
        blocklist = ls().blocks
        @test blocklist isa Vector{String} && issorted(blocklist)
        @test ls(type="block").blocks == blocklist && ls(type="block", api=ACTIVE_API) == blocklist
        strname = filter(x -> occursin("string", x), blocklist)[1]
        fsname = envvar("PI_TEST_LFS_BLOCK")
        @test strname == envvar("PI_TEST_STRING_BLOCK")
        @test fsname in blocklist

        strblock = PrefectBlock(strname)
        @test typeof(strblock) == PrefectBlock && typeof(strblock.block) == StringBlock
        @test fieldnames(typeof(strblock)) == (:blockname, :block)
        @test fieldnames(typeof(strblock.block)) == (:blockname, :blocktype, :value)
        @test strblock.blockname == strblock.block.blockname
        @test strblock.block.blocktype == "string"
        @test strblock.block.value == envvar("PI_TEST_STRING_BLOCK_VALUE")
        strblock2 = PrefectBlock(strname, ACTIVE_API)
        @test strblock2 == strblock

        fsblock = PrefectBlock(fsname)
        @test typeof(fsblock) == PrefectBlock && typeof(fsblock.block) == LocalFSBlock
        @test propertynames(fsblock.block) == (:blockname, :blocktype, :basepath, :read_path, :write_path)
        @test fsblock.blockname == fsblock.block.blockname
        @test fsblock.block.blocktype == "local-file-system"
        @test fsblock.block.basepath == envvar("PI_TEST_LFS_BASEPATH")
        p = fsblock.block.write_path("compat/round-trip.csv", COMPAT_CSV)
        @test p == joinpath(envvar("PI_TEST_LFS_BASEPATH"), "compat", "round-trip.csv")
        @test String(fsblock.block.read_path("compat/round-trip.csv")) == COMPAT_CSV

        @test typeof(getblock(strname)) <: AbstractDict && typeof(getblock(fsname)) <: AbstractDict
        @test getblock(strname)["name"] == last(split(strname, '/'))
        @test getblock(fsname, api=ACTIVE_API)["name"] == last(split(fsname, '/'))
        @test typeof(makeblock(getblock(fsname))) == LocalFSBlock
        @test typeof(makeblock(getblock(strname))) == StringBlock
        @test makeblock(getblock(fsname)) == fsblock.block

        cp = PrefectBlock(envvar("PI_TEST_CREDPAIR_BLOCK"))
        @test cp.block isa CredentialPairBlock && cp.block.id == envvar("PI_TEST_CREDPAIR_ID")
        @test cp.block.secret_key.secret == envvar("PI_TEST_CREDPAIR_SECRET")
        @test !occursin(envvar("PI_TEST_CREDPAIR_SECRET"), repr(cp) * sprint(dump, cp))
        sec = PrefectBlock(envvar("PI_TEST_SECRET_BLOCK"))
        @test sec.block.value.secret == envvar("PI_TEST_SECRET_VALUE") && repr(sec.block.value) == "####Secret####"
        s3 = PrefectBlock(envvar("PI_TEST_S3_BLOCK"))
        @test s3.block.aws_secret_access_key.secret == envvar("PI_TEST_AWS_SECRET")
        @test s3.block.region_name == envvar("PI_TEST_AWS_REGION")

        e = try
            getblock("local-file-system/no-such-block-here")
        catch err
            err
        end
        @test e isa BlockNotFoundError && fsname in e.existing          # upstream logs and returns nothing
    end

    @testset "compat integration: Dataset through the datastore block, one block fetch" begin
        PI.clear_block_cache!()
        ds = Dataset(dataset_name="compat_table", datastore_type="local")
        @test Datasets.block_selector(ds) isa PrefectBlock
        PI.clear_block_cache!()
        before = PI.REQUESTS_SENT[]
        paths = write(ds, COMPAT_CSV)
        @test paths == [joinpath(envvar("PI_TEST_LFS_BASEPATH"), ds.latest_path),
                        joinpath(envvar("PI_TEST_LFS_BASEPATH"), ds.dataset_path)]
        @test read(ds, String) == COMPAT_CSV
        @test read(ds) == Vector{UInt8}(COMPAT_CSV)
        @test PI.REQUESTS_SENT[] - before == 1          # three operations, one block fetch

        # A failed operation drops the cached block: the next one fetches it again.
        missing_ds = Dataset(dataset_name="compat_never_written", datastore_type="local")
        @test_throws SystemError read(missing_ds)
        before = PI.REQUESTS_SENT[]
        @test read(ds, String) == COMPAT_CSV
        @test PI.REQUESTS_SENT[] - before == 1
        before = PI.REQUESTS_SENT[]
        @test read(ds, String) == COMPAT_CSV
        @test PI.REQUESTS_SENT[] - before == 0
    end
end
