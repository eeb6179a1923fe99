# What a Julia job started by a Prefect flow needs: its parameters and a way to hand back a result.

"""
    parseargs(args=ARGS) -> Dict{String,String}

Parse `--key=value` arguments (as the flow passes its parameters). Values may be empty or hold `=`.
Raises [`ArgumentsError`](@ref) for anything else, or for a key given twice.
"""
function parseargs(args::AbstractVector{<:AbstractString}=ARGS)
    out = Dict{String,String}()
    for arg in args
        m = match(r"^--([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$"s, arg)
        if m === nothing
            reason = startswith(arg, "--") && !occursin('=', arg) ? "it has no \"=value\"." :
                     startswith(arg, "--") ? "the key must start with a letter or '_' and hold letters, digits, '_', '-' or '.'." :
                     "it does not start with \"--\"."
            throw(ArgumentsError(String(arg), reason))
        end
        key = String(m.captures[1])
        haskey(out, key) && throw(ArgumentsError(String(arg), "--$key is given more than once."))
        out[key] = String(m.captures[2])
    end
    return out
end

"""
    setresult(value; env=ENV) -> value

Hand `value` (a `Dict`, `Vector`, `String`, number, `Bool` or `nothing`) back to the flow that started
this job: it is written as JSON, atomically, to the file named by `PREFECT_JULIA_RESULT_PATH`. When that
variable is unset, nothing is written. Returns `value`.
"""
function setresult(value; env::AbstractDict=ENV)
    path = get(env, "PREFECT_JULIA_RESULT_PATH", "")
    isempty(path) && return value
    atomicwrite(path, json(value))
    return value
end
