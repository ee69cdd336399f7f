/* `emotion stats`: the daemon's Prometheus metrics (metrics_listen), fetched over HTTP with libcurl
 * and summed up for a terminal: replies by status, each stage's latency (mean, median and 95th
 * percentile estimated from the histogram, as Prometheus's histogram_quantile does), faces per
 * image, queue, workers and connections. */
#pragma once

#include "cli.h"

int cli_stats_main(const cli_options_t *defaults, int argc, char **argv);
