# Build script of the Julia image jobs start with (`invoke julia-image`; see the kit's runtime/julia_image.py).
#
#   julia --sysimage=JULIAS_OWN_IMAGE --project=julia --startup-file=no --output-o=OUT.o julia/build/image.jl
#
# Julia writes everything it has loaded and compiled by the end of this script into OUT.o, which the kit then
# links into a shared library. So the script loads the package and runs what a job typically calls first:
# log records with keywords of common types, dicts of mixed values, arguments, JSON, dates, dataset paths,
# CSV files. A job calling those starts without compiling them. It needs no Prefect server.

Base.reinit_stdio()

@eval Module() begin
    Base.init_load_path()
    Base.init_depot_path()
    using PrefectInterfaces
    using Dates, DelimitedFiles, Logging

    function workload()
        sink = IOBuffer()
        # The loggers a job logs through: the bridge's (PREFECT_JULIA_LOG_FORMAT=prefect) and Julia's own.
        for logger in (PrefectLogger(sink), ConsoleLogger(sink))
            with_logger(logger) do
                @info "a message"
                @info "a message" n = 1
                @info "a message" x = 1.5 s = "text" path = "a/b.csv"
                @info "a message" v = [1, 2] stations = 3 rows = 10
                @warn "a warning" station = "s1" max_temperature_c = 36.5
                @error "an error" exception = ErrorException("x")
                @debug "debug" n = 1
            end
        end
        # Arguments, results and JSON as jobs use them.
        args = parseargs(["--dataset_name=x", "--rundate=2026-11-21", "--name=world"])
        get(args, "name", "world")
        result = Dict("greeting" => "hello", "args" => args, "julia" => string(VERSION))
        json(result)
        json(Dict("output_path" => "a/b.csv", "rows" => [Dict(zip(["a", "b"], Any["s", 1.5]))]))
        json(Dict{String,Any}("n" => 1, "x" => 1.5, "b" => true, "v" => [1, 2], "s" => nothing))
        parsejson("{\"a\": [1, 2.5, \"x\", null, true], \"b\": {\"c\": \"d\"}}")
        tmp = mktempdir()
        try
            setresult(result; env=Dict("PREFECT_JULIA_RESULT_PATH" => joinpath(tmp, "result.json")))
            # Datasets: paths by date, and CSV through DelimitedFiles, as the bundled jobs read and write them.
            ds = Dataset(dataset_name="readings", datastore_type="local", rundate="2026-11-21")
            dated_path(ds), latest_path(ds), write_paths(ds)
            Dates.Date("2026-11-21") + Dates.Day(1)
            Dates.format(Dates.now(), Dates.DateFormat("yyyy-mm-dd"))
            file = joinpath(tmp, "data.csv")
            data = Any["s1" 20.5 40.0; "s2" 21.0 41.5]
            open(io -> writedlm(io, vcat(permutedims(["station", "temperature_c", "humidity_pct"]), data), ','), file, "w")
            table, header = readdlm(file, ','; header=true)
            col = findfirst(==("temperature_c"), vec(header))
            t = Float64.(table[:, col])
            round(sum(t) / length(t); digits=2), minimum(t), maximum(t)
            sort(unique(string.(table[:, 1])))
            permutedims(hcat(Any[Any["s1", 1, 2.5], Any["s2", 2, 3.5]]...))
        finally
            rm(tmp; recursive=true, force=true)
        end
        return nothing
    end

    try
        workload()
    catch err
        # The image is still good without the workload's compiled code: say why, keep building.
        println(stderr, "image workload: ", sprint(showerror, err))
    end

end

empty!(LOAD_PATH)
empty!(DEPOT_PATH)
