# A wrapper that keeps secret values out of show, print, repr, string interpolation, dump, JSON and logs.

const MASK = "********"

"""
    SecretValue(value)

Holds a secret (a string, or any JSON value of a `secret` block). It prints as `********` everywhere:
`show`, `print`, `repr`, string interpolation, `dump`, [`json`](@ref) and log records. Get the value with
the explicit call [`secretvalue`](@ref).
"""
struct SecretValue
    value::Any
    function SecretValue(value)
        register_secret!(value)
        new(value)
    end
end

"""
    secretvalue(s::SecretValue) -> Any
    secretvalue(s::SecretString) -> String
    secretvalue(block::SecretBlock) -> Any

The unmasked value of a secret. This is the only way to read it; keep the result out of logs.
"""
secretvalue(s::SecretValue) = getfield(s, :value)
secretvalue(::Nothing) = nothing

Base.show(io::IO, ::SecretValue) = print(io, "SecretValue(", MASK, ")")
Base.print(io::IO, ::SecretValue) = print(io, MASK)
Base.string(::SecretValue) = MASK
Base.dump(io::IOContext, ::SecretValue, n::Int, indent) = print(io, "SecretValue(", MASK, ")")
Base.propertynames(::SecretValue, private::Bool=false) = (:secret,)
Base.getproperty(s::SecretValue, name::Symbol) = name === :secret ? getfield(s, :value) :
    throw(ArgumentError("the value of a SecretValue is read with secretvalue(s) or s.secret"))
Base.:(==)(a::SecretValue, b::SecretValue) = isequal(getfield(a, :value), getfield(b, :value))
Base.hash(s::SecretValue, h::UInt) = hash(SecretValue, h)
writejson(io::IO, ::SecretValue) = writejson(io, MASK)

const SECRET_STRING_MASK = "####Secret####"

"""
    SecretString(secret::AbstractString)

A secret string, as in PrefectInterfaces.jl: `show`, `print`, `repr`, string interpolation and `dump` give
`####Secret####`, [`json`](@ref) writes `"********"`, and its text is scrubbed from log records. Read it
with `s.secret` or [`secretvalue`](@ref)`(s)`. Keys, block secrets and credential fields are
`SecretString`s; secrets holding a JSON value (not a string) are [`SecretValue`](@ref)s.
"""
struct SecretString
    secret::String
    function SecretString(secret::AbstractString)
        register_secret!(secret)
        new(String(secret))
    end
end

SecretString(s::SecretString) = s

secretvalue(s::SecretString) = getfield(s, :secret)
Base.show(io::IO, ::SecretString) = print(io, SECRET_STRING_MASK)
Base.print(io::IO, ::SecretString) = print(io, SECRET_STRING_MASK)
Base.string(::SecretString) = SECRET_STRING_MASK
Base.dump(io::IOContext, ::SecretString, n::Int, indent) = print(io, "SecretString ", SECRET_STRING_MASK)
Base.:(==)(a::SecretString, b::SecretString) = getfield(a, :secret) == getfield(b, :secret)
Base.hash(s::SecretString, h::UInt) = hash(SecretString, h)
Base.isempty(s::SecretString) = isempty(getfield(s, :secret))
writejson(io::IO, ::SecretString) = writejson(io, MASK)

"A secret as the package stores it: strings become SecretString, other JSON values SecretValue."
secretwrap(::Nothing) = nothing
secretwrap(s::SecretString) = s
secretwrap(s::AbstractString) = SecretString(s)
secretwrap(s::SecretValue) = (v = secretvalue(s); v isa AbstractString ? SecretString(v) : s)
secretwrap(v) = SecretValue(v)

# Texts of every secret this process has loaded, so that log records can be scrubbed even when a value was
# interpolated by hand. Short values are not scrubbed (they would mangle ordinary words). Each line of a
# multi-line secret (a PEM key's body) is a secret text too, so a line printed on its own is masked.
const SECRET_TEXTS = Set{String}()
const SECRET_LOCK = ReentrantLock()
const SECRET_VERSION = Ref(0)
const MIN_SECRET_LENGTH = 4
"A line of a multi-line secret is masked on its own from this length on."
const MIN_LINE_LENGTH = 8
const ARMOUR = r"^-----(BEGIN|END) [A-Z0-9 ]+-----$"

"""
    secretlines(value) -> Vector{String}

The lines of a multi-line secret that are masked on their own: not its PEM `BEGIN`/`END` lines, and not
lines shorter than $(MIN_LINE_LENGTH) characters (stripped of surrounding blanks).
"""
function secretlines(value::AbstractString)
    (occursin('\n', value) || occursin('\r', value)) || return String[]
    lines = String[]
    for line in split(value, r"\r\n|\r|\n")
        text = strip(line)
        length(text) >= MIN_LINE_LENGTH && !occursin(ARMOUR, text) && push!(lines, String(text))
    end
    return lines
end

function register_secret!(value)
    if value isa AbstractString
        if length(value) >= MIN_SECRET_LENGTH
            lock(SECRET_LOCK) do
                push!(SECRET_TEXTS, String(value))
                union!(SECRET_TEXTS, secretlines(value))
                SECRET_VERSION[] += 1
            end
        end
    elseif value isa AbstractDict
        foreach(register_secret!, values(value))
    elseif value isa AbstractVector
        foreach(register_secret!, value)
    elseif value isa Number && !(value isa Bool)
        register_secret!(string(value))
    end
    return nothing
end

# How `scrub` masks: a few texts one `replace` each (longest first); past `FEW_SECRETS`, one pass over the
# text through an index of the texts' first 8 bytes, so a megabyte of key lines costs time in proportion to
# the text scrubbed. Rebuilt when the secrets change.
const FEW_SECRETS = 64
struct ScrubPlan
    version::Int
    count::Int
    few::Vector{String}
    index::Dict{UInt64,Vector{String}}
end
const SCRUB_PLAN = Ref(ScrubPlan(-1, 0, String[], Dict{UInt64,Vector{String}}()))

prefix8(s::String, i::Int) = GC.@preserve s unsafe_load(Ptr{UInt64}(pointer(s, i)))

function scrubplan()
    lock(SECRET_LOCK) do
        plan = SCRUB_PLAN[]
        plan.version == SECRET_VERSION[] && plan.count == length(SECRET_TEXTS) && return plan
        texts = sort!(collect(SECRET_TEXTS), by=length, rev=true)
        few, index = String[], Dict{UInt64,Vector{String}}()
        for t in texts
            if length(texts) > FEW_SECRETS && ncodeunits(t) >= 8
                push!(get!(() -> String[], index, prefix8(t, 1)), t)
            else
                push!(few, t)
            end
        end
        SCRUB_PLAN[] = ScrubPlan(SECRET_VERSION[], length(SECRET_TEXTS), few, index)
    end
end

function startswith_at(s::String, i::Int, t::String)
    n = ncodeunits(t)
    i + n - 1 <= ncodeunits(s) || return false
    return GC.@preserve s t ccall(:memcmp, Cint, (Ptr{UInt8}, Ptr{UInt8}, Csize_t), pointer(s, i), pointer(t), n) == 0
end

function scrub_indexed(s::String, index::Dict{UInt64,Vector{String}})
    out = IOBuffer()
    start = i = 1
    last = ncodeunits(s) - 7
    while i <= last
        found = get(index, prefix8(s, i), nothing)
        hit = found === nothing ? nothing : findfirst(t -> startswith_at(s, i, t), found)
        if hit === nothing
            i += 1
            continue
        end
        write(out, SubString(s, start, prevind(s, i)))  # i starts a secret, so it is a character boundary
        write(out, MASK)
        i = start = i + ncodeunits(found[hit])
    end
    start == 1 && return s
    start <= ncodeunits(s) && write(out, SubString(s, start))
    return String(take!(out))
end

"Replace every loaded secret's text (and each line of a multi-line one) in `s` by the mask."
function scrub(s::AbstractString)
    out = String(s)
    isempty(SECRET_TEXTS) && return out
    plan = scrubplan()
    isempty(plan.index) || (out = scrub_indexed(out, plan.index))
    for t in plan.few
        occursin(t, out) && (out = replace(out, t => MASK))
    end
    return out
end
