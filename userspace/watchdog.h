/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The watchdog: a small process the daemon starts (`pinwarden watchdog`, not for
 * people) that bounds every stop of discovery whatever the daemon's state. See
 * watchdog.c.
 */
#ifndef PW_WATCHDOG_H
#define PW_WATCHDOG_H

struct daemon;

/* Start it (again); 0, or -1 after saying why. */
int watchdog_start(struct daemon *d);

/* Read what it reports (stops it ended) and write the events. */
void watchdog_drain(struct daemon *d);

/* Start it again if it ended (at most once a second). */
void watchdog_check(struct daemon *d);

/* `pinwarden watchdog BOUND_NS DAEMON_PID`, with its descriptors in place (watchdog.c). */
int cmd_watchdog(int argc, char **argv);

#endif /* PW_WATCHDOG_H */
