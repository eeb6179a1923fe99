# Summarise sensor readings per station: the Julia step of the demo pipeline (flows/demo.py).
#
#   julia --project=julia --startup-file=no julia/jobs/summarize_readings.jl \
#       --dataset_name=sensor_readings [--datastore_type=local] [--rundate=2026-11-21] [--output_name=NAME]
#
# Reads the extract dataset, writes a report dataset (station, readings, mean/min/max temperature, mean
# humidity) and hands the table back to the flow. Everything else comes from the Prefect server by name:
# the data block (PREFECT_DATA_BLOCK_LOCAL), the variable `demo_min_rows` and the secret `demo-api-token`.
using PrefectInterfaces

args = parseargs()
name = args["dataset_name"]
rundate = get(args, "rundate", nothing)
store = get(args, "datastore_type", nothing)
output_name = get(args, "output_name", "$(name)_summary")

token = PrefectBlock("secret/demo-api-token")
@info "loaded the credential block" token          # shown masked, never the value
min_rows = getvariable("demo_min_rows"; default=1)

input = Dataset(dataset_name=name, datastore_type=store, rundate=rundate)
data, header = readcsv(input)
@info "read $(size(data, 1)) readings" path = datasetpath(input)
size(data, 1) >= min_rows || error("only $(size(data, 1)) readings in $(datasetpath(input)); demo_min_rows is $min_rows")

col(n) = findfirst(==(n), header)
station, temp, humid = col("station"), col("temperature_c"), col("humidity_pct")
stations = sort(unique(string.(data[:, station])))
rows = Vector{Any}[]
for s in stations
    mask = string.(data[:, station]) .== s
    t = Float64.(data[mask, temp])
    h = Float64.(data[mask, humid])
    push!(rows, Any[s, length(t), round(sum(t) / length(t); digits=2), minimum(t), maximum(t), round(sum(h) / length(h); digits=1)])
    maximum(t) > 35 && @warn "hot station" station = s max_temperature_c = maximum(t)
end
names = ["station", "readings", "mean_temperature_c", "min_temperature_c", "max_temperature_c", "mean_humidity_pct"]
output = Dataset(dataset_name=output_name, datastore_type=store, dataset_type="reports", rundate=rundate)
written = writecsv(output, permutedims(hcat(rows...)); header=names)
@info "wrote the summary" stations = length(stations) path = written[end]     # the dated file (latest comes first)

# Each row as a NamedTuple: a JSON object with the columns in the order of `names` (a Dict's order is its
# hash order, and the flow's table artifact shows the columns in the order they arrive).
columns = Tuple(Symbol.(names))
setresult(Dict(
    "output_path" => written[end],
    "columns" => names,
    "rows" => [NamedTuple{columns}(Tuple(r)) for r in rows],
))
