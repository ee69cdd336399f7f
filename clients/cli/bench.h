/* `emotion bench`: throughput and latency of a local daemon. For each image and each concurrency
 * level, that many threads (one connection each, one request in flight each) send the image over
 * and over; prints requests/s, client-side latency percentiles, faces per reply and the mean
 * per-stage split the daemon reports in its Timings. Each run is bounded by a request count and a
 * duration; only ipc:// and loopback tcp:// endpoints are accepted, as over a real network the
 * numbers would measure the network. */
#pragma once

#include "cli.h"

int cli_bench_main(const cli_options_t *defaults, int argc, char **argv);
