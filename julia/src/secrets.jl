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
# interpolated by hand. Short values are not scrubbed (they would mangle ordinary words).
const SECRET_TEXTS = Set{String}()
const SECRET_LOCK = ReentrantLock()

function register_secret!(value)
    if value isa AbstractString
        length(value) >= 4 && lock(() -> push!(SECRET_TEXTS, String(value)), SECRET_LOCK)
    elseif value isa AbstractDict
        foreach(register_secret!, values(value))
    elseif value isa AbstractVector
        foreach(register_secret!, value)
    elseif value isa Number && !(value isa Bool)
        register_secret!(string(value))
    end
    return nothing
end

"Replace every loaded secret's text in `s` by the mask."
function scrub(s::AbstractString)
    texts = lock(() -> collect(SECRET_TEXTS), SECRET_LOCK)
    isempty(texts) && return String(s)
    out = String(s)
    for t in sort!(texts, by=length, rev=true)
        occursin(t, out) && (out = replace(out, t => MASK))
    end
    return out
end
