# Prefect blocks, loaded by "slug/name" and returned as typed Julia values.

"""
    PrefectBlock

Supertype of the blocks returned by `PrefectBlock("slug/name")`: [`LocalFSBlock`](@ref),
[`SecretBlock`](@ref), [`AWSCredentialsBlock`](@ref), [`S3BucketBlock`](@ref) and, for any other block type,
[`GenericBlock`](@ref). Every block has a `blockname` field (`"slug/name"`).

    PrefectBlock(blockname::AbstractString; api=PrefectAPI()) -> PrefectBlock

Load the block document `blockname` (`"slug/name"`, e.g. `"local-file-system/willowdata"`) from the Prefect
API, secrets included (they stay masked in every display; see [`SecretValue`](@ref)).
Raises [`MalformedBlockNameError`](@ref), [`BlockNotFoundError`](@ref), [`UnauthorizedError`](@ref) or
[`PrefectConnectionError`](@ref).
"""
abstract type PrefectBlock end

"""
    LocalFSBlock(blockname, basepath)

A `local-file-system` block: files under `basepath`. Read and write with `read(block, relpath)` and
`write(block, relpath, data)` (atomic).
"""
struct LocalFSBlock <: PrefectBlock
    blockname::String
    basepath::String
end

"""
    SecretBlock(blockname, secret::SecretValue)

A `secret` block; its value (a string or a JSON value) is read with [`secretvalue`](@ref)`(block)`.
"""
struct SecretBlock <: PrefectBlock
    blockname::String
    secret::Union{Nothing,SecretValue}
end

secretvalue(b::SecretBlock) = secretvalue(b.secret)

"""
    AWSCredentialsBlock(blockname, aws_access_key_id, aws_secret_access_key, aws_session_token,
                        profile_name, region_name)

An `aws-credentials` block. The secret key and session token are [`SecretValue`](@ref)s (or `nothing`).
"""
struct AWSCredentialsBlock <: PrefectBlock
    blockname::String
    aws_access_key_id::Union{Nothing,String}
    aws_secret_access_key::Union{Nothing,SecretValue}
    aws_session_token::Union{Nothing,SecretValue}
    profile_name::Union{Nothing,String}
    region_name::Union{Nothing,String}
end

"""
    S3BucketBlock(blockname, bucket_name, bucket_folder, credentials)

An `s3-bucket` block with its nested [`AWSCredentialsBlock`](@ref) (or `nothing`).
"""
struct S3BucketBlock <: PrefectBlock
    blockname::String
    bucket_name::String
    bucket_folder::String
    credentials::Union{Nothing,AWSCredentialsBlock}
end

"""
    GenericBlock(blockname, slug, data)

A block of any type without a typed struct: `data` holds all its fields as parsed JSON, with the
schema's secret fields wrapped in [`SecretValue`](@ref). Fields are also readable as properties
(`block.fieldname`).
"""
struct GenericBlock <: PrefectBlock
    blockname::String
    slug::String
    data::Dict{String,Any}
end

function Base.getproperty(b::GenericBlock, name::Symbol)
    name in fieldnames(GenericBlock) && return getfield(b, name)
    data = getfield(b, :data)
    haskey(data, String(name)) || throw(ArgumentError(
        "block \"$(getfield(b, :blockname))\" has no field $name; it has: $(join(sort!(collect(keys(data))), ", "))"))
    return data[String(name)]
end
Base.propertynames(b::GenericBlock, private::Bool=false) =
    (fieldnames(GenericBlock)..., Symbol.(sort!(collect(keys(getfield(b, :data)))))...)

function Base.show(io::IO, b::GenericBlock)
    print(io, "GenericBlock(\"", getfield(b, :blockname), "\", ")
    show(io, getfield(b, :data))
    print(io, ")")
end

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

function PrefectBlock(blockname::AbstractString; api::PrefectAPI=PrefectAPI())
    slug, name = splitblockname(blockname)
    path = "/block_types/slug/$(escape_segment(slug))/block_documents/name/$(escape_segment(name))?include_secrets=true"
    doc = apijson(api, "GET", path)
    if doc === nothing
        existing = try
            ls(; api=api, type=slug)
        catch
            String[]
        end
        throw(BlockNotFoundError(String(blockname), existing))
    end
    return makeblock(String(blockname), slug, doc)
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
secretornothing(x) = x === nothing ? nothing : x isa SecretValue ? x : SecretValue(x)

function awscredentials(blockname::String, data::AbstractDict)
    AWSCredentialsBlock(blockname,
        strornothing(get(data, "aws_access_key_id", nothing)),
        secretornothing(get(data, "aws_secret_access_key", nothing)),
        secretornothing(get(data, "aws_session_token", nothing)),
        strornothing(get(data, "profile_name", nothing)),
        strornothing(get(data, "region_name", nothing)))
end

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

"Build the typed block for a block document (the parsed JSON of the REST API)."
function makeblock(blockname::String, slug::String, doc::AbstractDict)
    data = get(doc, "data", Dict{String,Any}())
    data isa AbstractDict || (data = Dict{String,Any}("value" => data))
    data = masksecrets!(Dict{String,Any}(data), secretfields(doc))
    if slug == "local-file-system"
        return LocalFSBlock(blockname, string(something(get(data, "basepath", nothing), "")))
    elseif slug == "secret"
        return SecretBlock(blockname, secretornothing(get(data, "value", nothing)))
    elseif slug == "aws-credentials"
        return awscredentials(blockname, data)
    elseif slug == "s3-bucket"
        creds = get(data, "credentials", nothing)
        credblock = creds isa AbstractDict ? awscredentials(referencename(doc, "credentials", blockname), creds) : nothing
        return S3BucketBlock(blockname, string(something(get(data, "bucket_name", nothing), "")),
                             string(something(get(data, "bucket_folder", nothing), "")), credblock)
    else
        return GenericBlock(blockname, slug, data)
    end
end

"""
    ls(; api=PrefectAPI(), type=nothing, page_size=200) -> Vector{String}

Every (non-anonymous) block on the server as `"slug/name"`, sorted, reading as many pages of
`page_size` as there are. `type` restricts the list to one block type slug.
"""
function ls(; api::PrefectAPI=PrefectAPI(), type::Union{Nothing,AbstractString}=nothing, page_size::Integer=200)
    page_size > 0 || throw(ArgumentError("page_size must be positive"))
    names = String[]
    offset = 0
    while true
        body = Dict{String,Any}("offset" => offset, "limit" => page_size, "include_secrets" => false,
                                "sort" => "BLOCK_TYPE_AND_NAME_ASC",
                                "block_documents" => Dict("is_anonymous" => Dict("eq_" => false)))
        type === nothing || (body["block_types"] = Dict("slug" => Dict("any_" => [String(type)])))
        page = apijson(api, "POST", "/block_documents/filter"; body=body)
        page isa AbstractVector || throw(PrefectAPIError("POST", api.url * "/block_documents/filter", 200,
                                                         "expected a list of block documents"))
        for doc in page
            bt = get(doc, "block_type", nothing)
            slug = bt isa AbstractDict ? get(bt, "slug", nothing) : nothing
            slug === nothing && continue
            push!(names, string(slug, "/", doc["name"]))
        end
        length(page) < page_size && break
        offset += page_size
    end
    return sort!(unique!(names))
end
