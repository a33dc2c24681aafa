// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* An empty shared object: the host-safety storm preloads a new copy of it (a new
 * inode) into every run, so that each run is held where its dynamic linker maps it. */
int pw_fresh_lib(void)
{
	return 0;
}
