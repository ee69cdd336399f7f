/* `emotion eval`: measure the daemon's classifier on a FER2013 split. Each 48x48 face is sent as
 * GRAY8 with one client-supplied box {0,0,48,48} and exact_crop, so that detection is skipped and
 * the model sees the face exactly as in the dataset; prints accuracy, per-class precision and
 * recall, and the confusion matrix. */
#pragma once

#include "cli.h"

int cli_eval_main(const cli_options_t *defaults, int argc, char **argv);
