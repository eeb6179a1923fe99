# The abstract types every public value of the package hangs from (as in PrefectInterfaces.jl).

"""
    AbstractPrefectInterface

Supertype of the package's values: [`PrefectAPI`](@ref), [`AbstractPrefectBlock`](@ref),
[`Dataset`](@ref) and `Datasets.PrefectDatastoreNames`.
"""
abstract type AbstractPrefectInterface end

"""
    AbstractPrefectBlock <: AbstractPrefectInterface

Supertype of [`PrefectBlock`](@ref) and of the typed blocks it holds: [`LocalFSBlock`](@ref),
[`SecretBlock`](@ref), [`AWSCredentialsBlock`](@ref), [`S3BucketBlock`](@ref), [`StringBlock`](@ref),
[`CredentialPairBlock`](@ref) and [`GenericBlock`](@ref).
"""
abstract type AbstractPrefectBlock <: AbstractPrefectInterface end

"""
    PrefectInterfaces.AbstractPrefectConfig <: AbstractPrefectInterface

Supertype of [`PrefectAPI`](@ref) (not exported, as in PrefectInterfaces.jl).
"""
abstract type AbstractPrefectConfig <: AbstractPrefectInterface end
