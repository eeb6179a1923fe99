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
    secretvalue(block::SecretBlock) -> Any

The unmasked value of a secret. This is the only way to read it; keep the result out of logs.
"""
secretvalue(s::SecretValue) = getfield(s, :value)
secretvalue(::Nothing) = nothing

Base.show(io::IO, ::SecretValue) = print(io, "SecretValue(", MASK, ")")
Base.print(io::IO, ::SecretValue) = print(io, MASK)
Base.string(::SecretValue) = MASK
Base.dump(io::IOContext, ::SecretValue, n::Int, indent) = print(io, "SecretValue(", MASK, ")")
Base.propertynames(::SecretValue, private::Bool=false) = ()
Base.getproperty(::SecretValue, ::Symbol) = throw(ArgumentError("the value of a SecretValue is read with secretvalue(s)"))
Base.:(==)(a::SecretValue, b::SecretValue) = isequal(getfield(a, :value), getfield(b, :value))
Base.hash(s::SecretValue, h::UInt) = hash(SecretValue, h)
writejson(io::IO, ::SecretValue) = writejson(io, MASK)

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
