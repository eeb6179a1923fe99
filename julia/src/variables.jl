# Prefect Variables (Prefect 3 replaced String/JSON blocks with them).

struct NoDefault end

"""
    getvariable(name; default, api=PrefectAPI()) -> Any

The value of the Prefect Variable `name` (a string, number, Bool, `nothing`, `Vector{Any}` or
`Dict{String,Any}`, as stored). When it does not exist, returns `default` if one was given, else raises
[`VariableNotFoundError`](@ref).
"""
function getvariable(name::AbstractString; default=NoDefault(), api::PrefectAPI=PrefectAPI())
    isempty(name) && throw(ArgumentError("a variable name cannot be empty"))
    doc = apijson(api, "GET", "/variables/name/$(escape_segment(name))")
    if doc === nothing
        default isa NoDefault && throw(VariableNotFoundError(String(name)))
        return default
    end
    return doc["value"]
end
