# A strict RFC 8259 JSON reader and writer.
#
# Reading maps objects to Dict{String,Any}, arrays to Vector{Any}, strings to String, integers to Int64
# (BigInt when they do not fit), other numbers to Float64, true/false to Bool and null to `nothing`.

"""
    parsejson(text::AbstractString) -> Any
    parsejson(bytes::AbstractVector{UInt8}) -> Any

Parse one JSON value (RFC 8259, strict: no trailing commas, comments, NaN, leading zeros or raw control
characters in strings; `\\u` escapes with surrogate pairs). Objects become `Dict{String,Any}`, arrays
`Vector{Any}`, integers `Int64` (or `BigInt`), other numbers `Float64`, `null` becomes `nothing`.
Throws [`JSONError`](@ref) on malformed text.
"""
parsejson(text::AbstractString) = parsejson(Vector{UInt8}(codeunits(String(text))))

function parsejson(bytes::AbstractVector{UInt8})
    p = JSONParser(bytes, 1)
    skipws!(p)
    v = parsevalue!(p)
    skipws!(p)
    p.pos <= length(p.s) && jsonerror(p, "unexpected text after the JSON value")
    return v
end

mutable struct JSONParser{V<:AbstractVector{UInt8}}
    s::V
    pos::Int
end

@noinline jsonerror(p::JSONParser, msg) = throw(JSONError(msg, p.pos))

@inline function skipws!(p::JSONParser)
    s = p.s
    while p.pos <= length(s)
        c = s[p.pos]
        (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) || break
        p.pos += 1
    end
end

@inline function peekbyte(p::JSONParser)
    p.pos > length(p.s) && jsonerror(p, "unexpected end of input")
    return p.s[p.pos]
end

function parsevalue!(p::JSONParser)
    c = peekbyte(p)
    if c == UInt8('{')
        return parseobject!(p)
    elseif c == UInt8('[')
        return parsearray!(p)
    elseif c == UInt8('"')
        return parsestring!(p)
    elseif c == UInt8('t')
        expectword!(p, "true")
        return true
    elseif c == UInt8('f')
        expectword!(p, "false")
        return false
    elseif c == UInt8('n')
        expectword!(p, "null")
        return nothing
    elseif c == UInt8('-') || UInt8('0') <= c <= UInt8('9')
        return parsenumber!(p)
    else
        jsonerror(p, "unexpected character '$(Char(c))'")
    end
end

function expectword!(p::JSONParser, word::String)
    n = ncodeunits(word)
    p.pos + n - 1 <= length(p.s) || jsonerror(p, "unexpected end of input")
    for i in 1:n
        p.s[p.pos+i-1] == codeunit(word, i) || jsonerror(p, "invalid literal (expected $word)")
    end
    p.pos += n
end

function parseobject!(p::JSONParser)
    p.pos += 1
    d = Dict{String,Any}()
    skipws!(p)
    if peekbyte(p) == UInt8('}')
        p.pos += 1
        return d
    end
    while true
        skipws!(p)
        peekbyte(p) == UInt8('"') || jsonerror(p, "expected a string key")
        k = parsestring!(p)
        skipws!(p)
        peekbyte(p) == UInt8(':') || jsonerror(p, "expected ':' after an object key")
        p.pos += 1
        skipws!(p)
        d[k] = parsevalue!(p)
        skipws!(p)
        c = peekbyte(p)
        p.pos += 1
        c == UInt8('}') && return d
        c == UInt8(',') || (p.pos -= 1; jsonerror(p, "expected ',' or '}' in an object"))
    end
end

function parsearray!(p::JSONParser)
    p.pos += 1
    a = Any[]
    skipws!(p)
    if peekbyte(p) == UInt8(']')
        p.pos += 1
        return a
    end
    while true
        skipws!(p)
        push!(a, parsevalue!(p))
        skipws!(p)
        c = peekbyte(p)
        p.pos += 1
        c == UInt8(']') && return a
        c == UInt8(',') || (p.pos -= 1; jsonerror(p, "expected ',' or ']' in an array"))
    end
end

function hex4!(p::JSONParser)
    p.pos + 3 <= length(p.s) || jsonerror(p, "truncated \\u escape")
    v = UInt32(0)
    for _ in 1:4
        c = p.s[p.pos]
        d = UInt8('0') <= c <= UInt8('9') ? c - UInt8('0') :
            UInt8('a') <= c <= UInt8('f') ? c - UInt8('a') + 0x0a :
            UInt8('A') <= c <= UInt8('F') ? c - UInt8('A') + 0x0a : jsonerror(p, "invalid hex digit in \\u escape")
        v = (v << 4) | d
        p.pos += 1
    end
    return v
end

function parsestring!(p::JSONParser)
    p.pos += 1                      # opening quote
    s = p.s
    start = p.pos
    # Fast path: no escapes.
    while p.pos <= length(s)
        c = s[p.pos]
        if c == UInt8('"')
            str = String(s[start:p.pos-1])
            p.pos += 1
            isvalid(str) || jsonerror(p, "invalid UTF-8 in a string")
            return str
        elseif c == UInt8('\\')
            break
        elseif c < 0x20
            jsonerror(p, "raw control character in a string (escape it)")
        end
        p.pos += 1
    end
    io = IOBuffer()
    write(io, view(s, start:p.pos-1))
    while true
        p.pos > length(s) && jsonerror(p, "unterminated string")
        c = s[p.pos]
        if c == UInt8('"')
            p.pos += 1
            break
        elseif c < 0x20
            jsonerror(p, "raw control character in a string (escape it)")
        elseif c != UInt8('\\')
            write(io, c)
            p.pos += 1
            continue
        end
        p.pos += 1
        p.pos > length(s) && jsonerror(p, "unterminated escape")
        e = s[p.pos]
        p.pos += 1
        if e == UInt8('"') || e == UInt8('\\') || e == UInt8('/')
            write(io, e)
        elseif e == UInt8('b')
            write(io, 0x08)
        elseif e == UInt8('f')
            write(io, 0x0c)
        elseif e == UInt8('n')
            write(io, 0x0a)
        elseif e == UInt8('r')
            write(io, 0x0d)
        elseif e == UInt8('t')
            write(io, 0x09)
        elseif e == UInt8('u')
            u = hex4!(p)
            if 0xd800 <= u <= 0xdbff && p.pos + 1 <= length(s) && s[p.pos] == UInt8('\\') && s[p.pos+1] == UInt8('u')
                save = p.pos
                p.pos += 2
                lo = hex4!(p)
                if 0xdc00 <= lo <= 0xdfff
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)
                else
                    p.pos = save       # a lone high surrogate followed by another escape
                end
            end
            # Lone surrogates are kept as such (as Python's json does); Julia strings can hold them.
            write(io, Char(u))
        else
            p.pos -= 1
            jsonerror(p, "invalid escape '\\$(Char(e))'")
        end
    end
    str = String(take!(io))
    return str
end

function parsenumber!(p::JSONParser)
    s = p.s
    start = p.pos
    isfloat = false
    p.pos <= length(s) && s[p.pos] == UInt8('-') && (p.pos += 1)
    p.pos > length(s) && jsonerror(p, "truncated number")
    if s[p.pos] == UInt8('0')
        p.pos += 1
        p.pos <= length(s) && UInt8('0') <= s[p.pos] <= UInt8('9') && jsonerror(p, "leading zero in a number")
    elseif UInt8('1') <= s[p.pos] <= UInt8('9')
        while p.pos <= length(s) && UInt8('0') <= s[p.pos] <= UInt8('9')
            p.pos += 1
        end
    else
        jsonerror(p, "invalid number")
    end
    if p.pos <= length(s) && s[p.pos] == UInt8('.')
        isfloat = true
        p.pos += 1
        (p.pos <= length(s) && UInt8('0') <= s[p.pos] <= UInt8('9')) || jsonerror(p, "digit expected after '.'")
        while p.pos <= length(s) && UInt8('0') <= s[p.pos] <= UInt8('9')
            p.pos += 1
        end
    end
    if p.pos <= length(s) && (s[p.pos] == UInt8('e') || s[p.pos] == UInt8('E'))
        isfloat = true
        p.pos += 1
        p.pos <= length(s) && (s[p.pos] == UInt8('+') || s[p.pos] == UInt8('-')) && (p.pos += 1)
        (p.pos <= length(s) && UInt8('0') <= s[p.pos] <= UInt8('9')) || jsonerror(p, "digit expected in exponent")
        while p.pos <= length(s) && UInt8('0') <= s[p.pos] <= UInt8('9')
            p.pos += 1
        end
    end
    text = String(s[start:p.pos-1])
    if isfloat
        return parse(Float64, text)
    end
    v = tryparse(Int64, text)
    return v === nothing ? parse(BigInt, text) : v
end

"""
    writejson(io::IO, value)

Write `value` as compact JSON: dictionaries (keys as strings), vectors, tuples, named tuples, strings,
symbols, integers, finite floats, `Bool`, `nothing`/`missing` (as `null`) and dates (ISO strings).
Secrets ([`SecretValue`](@ref)) are written masked. Non-ASCII text is written as UTF-8.
"""
function writejson end

"""
    json(value) -> String

`value` as a compact JSON string; see [`writejson`](@ref).
"""
function json(@nospecialize(value))
    io = IOBuffer()
    writejson(io, value)
    return String(take!(io))
end

writejson(io::IO, ::Nothing) = print(io, "null")
writejson(io::IO, ::Missing) = print(io, "null")
writejson(io::IO, b::Bool) = print(io, b ? "true" : "false")
writejson(io::IO, n::Integer) = print(io, n)
function writejson(io::IO, x::AbstractFloat)
    isfinite(x) || throw(JSONError("$x cannot be written as JSON (only finite numbers can)", 0))
    print(io, Float64(x))
end
writejson(io::IO, s::Symbol) = writejson(io, String(s))
writejson(io::IO, c::AbstractChar) = writejson(io, string(c))
writejson(io::IO, d::Dates.TimeType) = writejson(io, string(d))

function writejson(io::IO, s::AbstractString)
    write(io, '"')
    for c in s
        if c == '"'
            write(io, "\\\"")
        elseif c == '\\'
            write(io, "\\\\")
        elseif c == '\n'
            write(io, "\\n")
        elseif c == '\r'
            write(io, "\\r")
        elseif c == '\t'
            write(io, "\\t")
        elseif c == '\b'
            write(io, "\\b")
        elseif c == '\f'
            write(io, "\\f")
        elseif c < ' ' || c == '\x7f'
            write(io, "\\u", string(UInt32(c), base=16, pad=4))
        elseif !isvalid(c)
            # Malformed UTF-8 or a lone surrogate: escape surrogates, replace the rest.
            code = try
                UInt32(c)
            catch
                0xfffd
            end
            write(io, "\\u", string(0xd800 <= code <= 0xdfff ? code : 0xfffd, base=16, pad=4))
        else
            write(io, c)
        end
    end
    write(io, '"')
end

function writejson(io::IO, d::AbstractDict)
    @nospecialize
    write(io, '{')
    first = true
    for (k, v) in d
        first || write(io, ',')
        first = false
        writejson(io, k isa AbstractString ? k : string(k))
        write(io, ':')
        writejson(io, v)
    end
    write(io, '}')
end

function writejson(io::IO, nt::NamedTuple)
    write(io, '{')
    first = true
    for (k, v) in pairs(nt)
        first || write(io, ',')
        first = false
        writejson(io, String(k))
        write(io, ':')
        writejson(io, v)
    end
    write(io, '}')
end

function writejson(io::IO, a::Union{AbstractVector,Tuple,AbstractSet})
    @nospecialize
    write(io, '[')
    first = true
    for v in a
        first || write(io, ',')
        first = false
        writejson(io, v)
    end
    write(io, ']')
end

writejson(io::IO, x) = throw(JSONError("a value of type $(typeof(x)) cannot be written as JSON", 0))
