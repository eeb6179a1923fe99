# The Julia half of tests/vectors/secret_lines.json (run by tests/test_secret_lines.py): the same secrets give
# the same masked text as in Python, through the few-texts path and the indexed one. Prints "N passed, N failed".
using PrefectInterfaces
const PI = PrefectInterfaces
vectors = PI.parsejson(read(ARGS[1], String))
passed = failed = 0
function check(ok, what)
    global passed, failed
    ok ? (passed += 1) : (failed += 1; println("FAILED: ", what))
end
for case in vectors["lines"]
    check(PI.secretlines(case["value"]) == case["lines"], "secretlines($(repr(case["value"])))")
end
for path in ("few", "indexed")
    path == "indexed" && foreach(i -> PI.SecretString("padding-secret-$(lpad(i, 4, '0'))"), 1:PI.FEW_SECRETS + 1)
    foreach(PI.SecretString, vectors["secrets"])
    check(isempty(PI.scrubplan().index) == (path == "few"), "the $path path is taken")
    for case in vectors["cases"]
        got = PI.scrub(case["text"])
        check(got == case["scrubbed"], "$path: scrub($(repr(case["text"]))) == $(repr(got))")
    end
end
println(passed, " passed, ", failed, " failed")
exit(failed == 0 ? 0 : 1)
