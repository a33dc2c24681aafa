/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The daemon talking about itself (stderr), OpenBSD style. Events, the
 * product, are written by events.c and never through these functions.
 */
#ifndef PW_LOG_H
#define PW_LOG_H

#include <stdarg.h>

extern int log_verbose;

void log_init(const char *progname, int verbose);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* adds strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* only with -v */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));  /* exit 1, errno */
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn)); /* exit 1 */

#endif /* PW_LOG_H */
