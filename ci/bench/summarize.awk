# ci/bench.sh's summary: reads the per-run results (tab-separated) and prints markdown.
#
# Input columns: round, connections, variant, req/s, p50 (us), p99 (us),
#                gateway CPU per request (us), requests, errors, other load (CPUs busy),
#                new connections per request (accepted by the function), five diagnostic
#                columns, new TLS connections, of them resumed.
# Variables: order   = variant ids, in table order
#            labels  = their labels, "|"-separated, same order
#            bases   = each one's baseline variant id, same order (default: the first)
#            conns   = connection counts, in table order
#            pending = labels of variants not measured yet, "|"-separated
#            mode    = "summary" (medians and ratios) or "raw" (every run)
#
# Medians are over rounds. A ratio is the median over rounds of (variant / baseline) in
# the same round and connection count: runs next to each other in time share the
# machine's state, so the ratio cancels most of the noise both see.

function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
    if (n == 0) return ""
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}

function ms(us) { return sprintf("%.2f ms", us / 1000) }
function ratio(x) { return x == "" ? "-" : sprintf("%.2f", x) }
function resumed(r, n) { return n > 0 ? sprintf("%.1f%% of %d", 100 * r / n, n) : "-" }

BEGIN {
    FS = "\t"
    nv = split(order, ord, " ")
    split(labels, lab, "|")
    nb = split(bases, bs, " ")
    nc = split(conns, cl, " ")
    np = (pending == "") ? 0 : split(pending, pend, "|")
}

{
    r = $1; c = $2; v = $3
    if (!(r in seen_round)) { seen_round[r] = 1; rounds[++nr] = r }
    rps[v, c, r] = $4; p50[v, c, r] = $5; p99[v, c, r] = $6; cpu[v, c, r] = $7
    reqs[v, c, r] = $8; errs[v, c] += $9; opens[v, c, r] = $11
    tls_new[v, c] += $17; tls_resumed[v, c] += $18
    have[v, c, r] = 1
    line[++nl] = $0
}

END {
    if (mode == "raw") {
        print "| round | conns | variant | req/s | p50 | p99 | CPU/req | new conns/req | TLS resumed | requests | errors | other load (CPUs) |"
        print "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= nl; i++) {
            split(line[i], f, "\t")
            name = f[3]
            for (k = 1; k <= nv; k++) if (ord[k] == f[3]) name = lab[k]
            printf "| %s | %s | %s | %.0f | %s | %s | %.1f µs | %.3f | %s | %d | %d | %.2f |\n", \
                f[1], f[2], name, f[4], ms(f[5]), ms(f[6]), f[7], f[11], resumed(f[18], f[17]), \
                f[8], f[9], f[10]
        }
        exit
    }

    print "| variant | conns | req/s | ×pp | p50 | ×pp | p99 | ×pp | CPU/req | ×pp | new conns/req | TLS resumed | errors |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (ci = 1; ci <= nc; ci++) {
        c = cl[ci]
        for (k = 1; k <= nv; k++) {
            v = ord[k]
            base = (k <= nb && bs[k] != "") ? bs[k] : ord[1]
            n = 0; split("", A); split("", B); split("", C); split("", D); split("", E)
            split("", RA); split("", RB); split("", RC); split("", RD); m = 0
            for (ri = 1; ri <= nr; ri++) {
                r = rounds[ri]
                if (!((v, c, r) in have)) continue
                n++
                A[n] = rps[v, c, r]; B[n] = p50[v, c, r]; C[n] = p99[v, c, r]; D[n] = cpu[v, c, r]
                E[n] = opens[v, c, r]
                if ((base, c, r) in have && rps[base, c, r] > 0 && p50[base, c, r] > 0 \
                        && p99[base, c, r] > 0 && cpu[base, c, r] > 0) {
                    m++
                    RA[m] = rps[v, c, r] / rps[base, c, r]
                    RB[m] = p50[v, c, r] / p50[base, c, r]
                    RC[m] = p99[v, c, r] / p99[base, c, r]
                    RD[m] = cpu[v, c, r] / cpu[base, c, r]
                }
            }
            if (n == 0) continue
            printf "| %s | %s | %.0f | %s | %s | %s | %s | %s | %.1f µs | %s | %.3f | %s | %d |\n", \
                lab[k], c, median(A, n), ratio(median(RA, m)), \
                ms(median(B, n)), ratio(median(RB, m)), \
                ms(median(C, n)), ratio(median(RC, m)), \
                median(D, n), ratio(median(RD, m)), median(E, n), \
                resumed(tls_resumed[v, c], tls_new[v, c]), errs[v, c]
        }
    }
    for (k = 1; k <= np; k++)
        printf "| %s | | not measured yet | | | | | | | | | | |\n", pend[k]
}
