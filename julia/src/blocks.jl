# Prefect blocks: `PrefectBlock("slug/name")` loads a block document and holds it as a typed block.

"""
    LocalFSBlock(blockname, blocktype, basepath)
    LocalFSBlock(blockname, basepath)

A `local-file-system` block: files under `basepath`. Read and write with `read(block, relpath)` and
`write(block, relpath, data)` (atomic), or `block.read_path(relpath)` / `block.write_path(relpath, x)`
(see [`write_path`](@ref)).
"""
struct LocalFSBlock <: AbstractPrefectBlock
    blockname::String
    blocktype::String
    basepath::String
end

LocalFSBlock(blockname::AbstractString, basepath::AbstractString) = LocalFSBlock(blockname, "local-file-system", basepath)

"""
    SecretBlock(blockname, blocktype, value)
    SecretBlock(blockname, value::SecretValue)

A `secret` block. `value` is a [`SecretString`](@ref) (`block.value.secret`) or, for a secret holding a
JSON value, a [`SecretValue`](@ref); [`secretvalue`](@ref)`(block)` reads either.
"""
struct SecretBlock <: AbstractPrefectBlock
    blockname::String
    blocktype::String
    value::Union{Nothing,SecretString,SecretValue}
    SecretBlock(blockname::AbstractString, blocktype::AbstractString, value) = new(blockname, blocktype, secretwrap(value))
end

SecretBlock(blockname::AbstractString, value::Union{Nothing,SecretValue,SecretString}) = SecretBlock(blockname, "secret", value)

secretvalue(b::SecretBlock) = secretvalue(b.value)

"""
    AWSCredentialsBlock(blockname, blocktype, region_name, aws_access_key_id, aws_secret_access_key)
    AWSCredentialsBlock(blockname, blocktype, region_name, aws_access_key_id, aws_secret_access_key,
                        aws_session_token, profile_name[, endpoint_url])
    AWSCredentialsBlock(blockname, aws_access_key_id, aws_secret_access_key, aws_session_token,
                        profile_name, region_name)

An `aws-credentials` block. The secret key and session token are [`SecretString`](@ref)s (or `nothing`);
other fields are strings or `nothing`. `endpoint_url` (the block's `aws_client_parameters.endpoint_url`)
points at an S3-compatible store; `nothing` means AWS itself.
"""
struct AWSCredentialsBlock <: AbstractPrefectBlock
    blockname::String
    blocktype::String
    region_name::Union{Nothing,String}
    aws_access_key_id::Union{Nothing,String}
    aws_secret_access_key::Union{Nothing,SecretString}
    aws_session_token::Union{Nothing,SecretString}
    profile_name::Union{Nothing,String}
    endpoint_url::Union{Nothing,String}
    function AWSCredentialsBlock(blockname::AbstractString, blocktype::AbstractString, region_name, aws_access_key_id,
                                 aws_secret_access_key, aws_session_token, profile_name, endpoint_url=nothing)
        new(blockname, blocktype, strornothing(region_name), strornothing(aws_access_key_id),
            secretstring(aws_secret_access_key), secretstring(aws_session_token), strornothing(profile_name),
            strornothing(endpoint_url))
    end
end

AWSCredentialsBlock(blockname::AbstractString, blocktype::AbstractString, region_name, aws_access_key_id, aws_secret_access_key) =
    AWSCredentialsBlock(blockname, blocktype, region_name, aws_access_key_id, aws_secret_access_key, nothing, nothing)
AWSCredentialsBlock(blockname::AbstractString, aws_access_key_id, aws_secret_access_key, aws_session_token, profile_name, region_name) =
    AWSCredentialsBlock(blockname, "aws-credentials", region_name, aws_access_key_id, aws_secret_access_key,
                        aws_session_token, profile_name)

"""
    S3BucketBlock(blockname, blocktype, bucket_name, bucket_folder, region_name, aws_access_key_id,
                  aws_secret_access_key)
    S3BucketBlock(blockname, bucket_name, bucket_folder, credentials)

An `s3-bucket` block with its nested [`AWSCredentialsBlock`](@ref) (or `nothing`) in `credentials`;
`region_name`, `aws_access_key_id` and `aws_secret_access_key` read through to it.
"""
struct S3BucketBlock <: AbstractPrefectBlock
    blockname::String
    blocktype::String
    bucket_name::String
    bucket_folder::String
    credentials::Union{Nothing,AWSCredentialsBlock}
end

S3BucketBlock(blockname::AbstractString, bucket_name::AbstractString, bucket_folder::AbstractString,
              credentials::Union{Nothing,AWSCredentialsBlock}) =
    S3BucketBlock(blockname, "s3-bucket", bucket_name, bucket_folder, credentials)
S3BucketBlock(blockname::AbstractString, blocktype::AbstractString, bucket_name::AbstractString,
              bucket_folder::AbstractString, region_name, aws_access_key_id, aws_secret_access_key) =
    S3BucketBlock(blockname, blocktype, bucket_name, bucket_folder,
                  AWSCredentialsBlock(string(blockname, ".credentials"), "aws-credentials", region_name,
                                      aws_access_key_id, aws_secret_access_key))

"""
    StringBlock(blockname, blocktype, value)

A `string` block (Prefect 2; Prefect 3.5 replaced them with Variables, see [`getvariable`](@ref)).
"""
struct StringBlock <: AbstractPrefectBlock
    blockname::String
    blocktype::String
    value::String
end

"""
    CredentialPairBlock(blockname, blocktype, id, secret_key)

A `credentialpair` block: an `id` and its `secret_key` (a [`SecretString`](@ref)).
"""
struct CredentialPairBlock <: AbstractPrefectBlock
    blockname::String
    blocktype::String
    id::String
    secret_key::SecretString
    CredentialPairBlock(blockname::AbstractString, blocktype::AbstractString, id::AbstractString, secret_key) =
        new(blockname, blocktype, id, secretstring(secret_key))
end

"""
    GenericBlock(blockname, slug, data)

A block of any type without a typed struct: `data` holds all its fields as parsed JSON, with the
schema's secret fields wrapped in [`SecretValue`](@ref). Fields are also readable as properties
(`block.fieldname`); `block.blocktype` is the slug.
"""
struct GenericBlock <: AbstractPrefectBlock
    blockname::String
    slug::String
    data::Dict{String,Any}
end

function Base.getproperty(b::GenericBlock, name::Symbol)
    name in fieldnames(GenericBlock) && return getfield(b, name)
    name === :blocktype && return getfield(b, :slug)
    data = getfield(b, :data)
    haskey(data, String(name)) || throw(ArgumentError(
        "block \"$(getfield(b, :blockname))\" has no field $name; it has: $(join(sort!(collect(keys(data))), ", "))"))
    return data[String(name)]
end
Base.propertynames(b::GenericBlock, private::Bool=false) =
    (fieldnames(GenericBlock)..., :blocktype, Symbol.(sort!(collect(keys(getfield(b, :data)))))...)

function Base.show(io::IO, b::GenericBlock)
    print(io, "GenericBlock(\"", getfield(b, :blockname), "\", \"", getfield(b, :slug), "\", ")
    show(io, getfield(b, :data))
    print(io, ")")
end

"""
    PrefectBlock(blockname::AbstractString; api=PrefectAPI())
    PrefectBlock(blockname, api::PrefectAPI)
    PrefectBlock(blockname, block::AbstractPrefectBlock)

A Prefect block: `blockname` (`"slug/name"`, e.g. `"local-file-system/willowdata"`) and the typed
`block` ([`LocalFSBlock`](@ref), [`SecretBlock`](@ref), [`AWSCredentialsBlock`](@ref),
[`S3BucketBlock`](@ref), [`StringBlock`](@ref), [`CredentialPairBlock`](@ref), or [`GenericBlock`](@ref)
for any other type). The first two forms load the block document from the Prefect API, secrets
included (masked in every display); the third wraps a block that is on no server.

The typed block's fields read through: `PrefectBlock("local-file-system/willowdata").basepath` is
`.block.basepath`, and `read`, `write`, [`secretvalue`](@ref), [`read_path`](@ref) and
[`write_path`](@ref) accept a `PrefectBlock` as they accept its block.
Raises [`MalformedBlockNameError`](@ref), [`BlockNotFoundError`](@ref), [`UnauthorizedError`](@ref) or
[`PrefectConnectionError`](@ref).
"""
struct PrefectBlock <: AbstractPrefectBlock
    blockname::String
    block::AbstractPrefectBlock
    PrefectBlock(blockname::AbstractString, block::AbstractPrefectBlock) =
        new(blockname, block isa PrefectBlock ? getfield(block, :block) : block)
end

function PrefectBlock(blockname::AbstractString; api::PrefectAPI=PrefectAPI())
    slug, _ = splitblockname(blockname)
    return PrefectBlock(blockname, makeblock(String(blockname), slug, getblock(blockname; api=api)))
end
PrefectBlock(blockname::AbstractString, api::PrefectAPI) = PrefectBlock(blockname; api=api)

function Base.getproperty(b::PrefectBlock, name::Symbol)
    (name === :blockname || name === :block) && return getfield(b, name)
    return getproperty(getfield(b, :block), name)
end
Base.propertynames(b::PrefectBlock, private::Bool=false) =
    (:blockname, :block, filter(n -> n !== :blockname, collect(propertynames(getfield(b, :block))))...)

function Base.show(io::IO, b::PrefectBlock)
    print(io, "PrefectBlock(")
    show(io, getfield(b, :blockname))
    print(io, ", ")
    show(io, getfield(b, :block))
    print(io, ")")
end

"The typed block inside a `PrefectBlock` (any other block is returned as it is)."
unwrap(b::PrefectBlock) = getfield(b, :block)
unwrap(b) = b

secretvalue(b::PrefectBlock) = secretvalue(unwrap(b))

# Blocks compare by their fields (secrets by value), so a block loaded twice is `==` to itself.
Base.:(==)(a::T, b::T) where {T<:AbstractPrefectBlock} = all(f -> getfield(a, f) == getfield(b, f), fieldnames(T))
Base.hash(b::AbstractPrefectBlock, h::UInt) = hash(getfield(unwrap(b), :blockname), hash(typeof(unwrap(b)), h))

# `block.read_path(p)` and `block.write_path(p, x)` on the file-like blocks, as in PrefectInterfaces.jl.
const PATH_PROPERTIES = (:read_path, :write_path)

function Base.getproperty(b::Union{LocalFSBlock,S3BucketBlock}, name::Symbol)
    name === :read_path && return relpath -> read_path(b, relpath)
    name === :write_path && return (relpath, data) -> write_path(b, relpath, data)
    if b isa S3BucketBlock && name in (:region_name, :aws_access_key_id, :aws_secret_access_key)
        creds = getfield(b, :credentials)
        return creds === nothing ? nothing : getfield(creds, name)
    end
    return getfield(b, name)
end
Base.propertynames(b::LocalFSBlock, private::Bool=false) = (fieldnames(LocalFSBlock)..., PATH_PROPERTIES...)
Base.propertynames(b::S3BucketBlock, private::Bool=false) =
    (fieldnames(S3BucketBlock)..., :region_name, :aws_access_key_id, :aws_secret_access_key, PATH_PROPERTIES...)

# SecretBlock's value was called `secret` before: keep that name readable.
Base.getproperty(b::SecretBlock, name::Symbol) = name === :secret ? getfield(b, :value) : getfield(b, name)

"""
    splitblockname(blockname) -> (slug, name)

Split `"slug/name"`; [`MalformedBlockNameError`](@ref) for anything else.
"""
function splitblockname(blockname::AbstractString)
    parts = split(blockname, '/')
    (length(parts) == 2 && !isempty(parts[1]) && !isempty(parts[2]) && all(p -> p == strip(p), parts)) ||
        throw(MalformedBlockNameError(String(blockname)))
    return String(parts[1]), String(parts[2])
end

"""
    getblock(blockname; api=PrefectAPI()) -> Dict{String,Any}

The block document `blockname` (`"slug/name"`) as the Prefect API returns it, secrets included (in
plain text: prefer [`PrefectBlock`](@ref), which masks them). Raises [`BlockNotFoundError`](@ref)
when it does not exist, and the errors of [`PrefectBlock`](@ref).
"""
function getblock(blockname::AbstractString; api::PrefectAPI=PrefectAPI())
    slug, name = splitblockname(blockname)
    path = "/block_types/slug/$(escape_segment(slug))/block_documents/name/$(escape_segment(name))?include_secrets=true"
    doc = apijson(api, "GET", path)
    if doc === nothing
        existing = try
            collect(ls(; api=api, type=slug))
        catch
            String[]
        end
        throw(BlockNotFoundError(String(blockname), existing))
    end
    doc isa AbstractDict || throw(PrefectAPIError("GET", api.url * path, 200, "expected a block document"))
    return doc
end

"Secret field paths of a block document's schema (e.g. `[\"value\"]`, `[\"credentials.aws_secret_access_key\"]`)."
function secretfields(doc)
    schema = get(doc, "block_schema", nothing)
    schema isa AbstractDict || return String[]
    fields = get(schema, "fields", nothing)
    fields isa AbstractDict || return String[]
    sf = get(fields, "secret_fields", nothing)
    sf isa AbstractVector || return String[]
    return unique(String[string(x) for x in sf])
end

# Wrap the values at the secret paths (dotted, `*` for every key) in SecretValue.
function masksecrets!(data::AbstractDict, paths::Vector{String})
    for p in paths
        maskpath!(data, split(p, '.'))
    end
    return data
end

function maskpath!(d, parts)
    d isa AbstractDict || return
    key = String(parts[1])
    keys_ = key == "*" ? collect(keys(d)) : (haskey(d, key) ? [key] : String[])
    for k in keys_
        if length(parts) == 1
            v = d[k]
            v === nothing || v isa SecretValue || (d[k] = SecretValue(v))
        else
            maskpath!(d[k], parts[2:end])
        end
    end
end

strornothing(x) = x === nothing ? nothing : string(x)
secretstring(x) = x === nothing ? nothing : x isa SecretString ? x :
                  SecretString(x isa SecretValue ? string(secretvalue(x)) : string(x))

function awscredentials(blockname::String, data::AbstractDict)
    AWSCredentialsBlock(blockname, "aws-credentials",
        get(data, "region_name", nothing),
        get(data, "aws_access_key_id", nothing),
        get(data, "aws_secret_access_key", nothing),
        get(data, "aws_session_token", nothing),
        get(data, "profile_name", nothing),
        endpointof(get(data, "aws_client_parameters", nothing)))
end

endpointof(params::AbstractDict) = (e = get(params, "endpoint_url", nothing); e === nothing || isempty(string(e)) ? nothing : e)
endpointof(_) = nothing

# The "slug/name" of a nested block document, or "<parent>.<field>" for an anonymous one.
function referencename(doc::AbstractDict, field::String, parent::String)
    refs = get(doc, "block_document_references", nothing)
    ref = refs isa AbstractDict ? get(refs, field, nothing) : nothing
    bd = ref isa AbstractDict ? get(ref, "block_document", nothing) : nothing
    if bd isa AbstractDict && get(bd, "is_anonymous", false) != true
        bt = get(bd, "block_type", nothing)
        slug = bt isa AbstractDict ? get(bt, "slug", nothing) : nothing
        name = get(bd, "name", nothing)
        slug !== nothing && name !== nothing && return string(slug, "/", name)
    end
    return string(parent, ".", field)
end

textfield(data, key) = string(something(get(data, key, nothing), ""))

"""
    makeblock(doc::AbstractDict) -> AbstractPrefectBlock
    makeblock(blockname, slug, doc) -> AbstractPrefectBlock

The typed block for a block document (the parsed JSON of the REST API, e.g. from [`getblock`](@ref)).
The one-argument form takes the name from the document's `block_type.slug` and `name`. A block type
without a struct gives a [`GenericBlock`](@ref).
"""
function makeblock(doc::AbstractDict)
    bt = get(doc, "block_type", nothing)
    slug = bt isa AbstractDict ? get(bt, "slug", nothing) : nothing
    name = get(doc, "name", nothing)
    (slug isa AbstractString && name isa AbstractString) || throw(ArgumentError(
        "makeblock needs a block document with \"name\" and \"block_type\" => {\"slug\"}, as getblock(blockname) returns"))
    return makeblock(string(slug, "/", name), String(slug), doc)
end

function makeblock(blockname::String, slug::String, doc::AbstractDict)
    data = get(doc, "data", Dict{String,Any}())
    data isa AbstractDict || (data = Dict{String,Any}("value" => data))
    data = masksecrets!(Dict{String,Any}(data), secretfields(doc))
    if slug == "local-file-system"
        return LocalFSBlock(blockname, slug, textfield(data, "basepath"))
    elseif slug == "secret"
        return SecretBlock(blockname, slug, get(data, "value", nothing))
    elseif slug == "aws-credentials"
        return awscredentials(blockname, data)
    elseif slug == "s3-bucket"
        creds = get(data, "credentials", nothing)
        credblock = creds isa AbstractDict ? awscredentials(referencename(doc, "credentials", blockname), creds) : nothing
        return S3BucketBlock(blockname, slug, textfield(data, "bucket_name"), textfield(data, "bucket_folder"), credblock)
    elseif slug == "string"
        return StringBlock(blockname, slug, textfield(data, "value"))
    elseif slug == "credentialpair"
        return CredentialPairBlock(blockname, slug, textfield(data, "id"),
                                   something(get(data, "secret_key", nothing), ""))
    else
        return GenericBlock(blockname, slug, data)
    end
end

"""
    BlockList <: AbstractVector{String}

What [`ls`](@ref) returns: the block names, usable as a vector, and as `list.blocks` like the named
tuple of PrefectInterfaces.jl.
"""
struct BlockList <: AbstractVector{String}
    blocks::Vector{String}
end
Base.size(l::BlockList) = size(l.blocks)
Base.getindex(l::BlockList, i::Int) = l.blocks[i]
Base.IndexStyle(::Type{BlockList}) = IndexLinear()

"""
    ls(; type="block", api=PrefectAPI(), page_size=200) -> BlockList

Every (non-anonymous) block on the server as `"slug/name"`, sorted, reading as many pages of
`page_size` as there are. Use it as a vector of names or as `ls().blocks`. `type="block"` (or
`nothing`) lists every block; any other `type` is a block type slug to restrict the list to.
"""
function ls(; api::PrefectAPI=PrefectAPI(), type::Union{Nothing,AbstractString}="block", page_size::Integer=200)
    page_size > 0 || throw(ArgumentError("page_size must be positive"))
    slug = (type === nothing || type == "block") ? nothing : String(type)
    names = String[]
    offset = 0
    while true
        body = Dict{String,Any}("offset" => offset, "limit" => page_size, "include_secrets" => false,
                                "sort" => "BLOCK_TYPE_AND_NAME_ASC",
                                "block_documents" => Dict("is_anonymous" => Dict("eq_" => false)))
        slug === nothing || (body["block_types"] = Dict("slug" => Dict("any_" => [slug])))
        page = apijson(api, "POST", "/block_documents/filter"; body=body)
        page isa AbstractVector || throw(PrefectAPIError("POST", api.url * "/block_documents/filter", 200,
                                                         "expected a list of block documents"))
        for doc in page
            bt = get(doc, "block_type", nothing)
            s = bt isa AbstractDict ? get(bt, "slug", nothing) : nothing
            s === nothing && continue
            push!(names, string(s, "/", doc["name"]))
        end
        length(page) < page_size && break
        offset += page_size
    end
    return BlockList(sort!(unique!(names)))
end
