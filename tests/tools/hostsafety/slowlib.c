// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A shared object that pinwarden takes for OpenSSL's libssl (it exports SSL_ctrl,
 * SSL_set_fd and OPENSSL_init_ssl and calls d2i_X509) with 64 MiB of code that the
 * daemon disassembles, instruction by instruction, to find d2i_X509's call sites:
 * seconds of examination, as a hostile file can cost. The tests load it with
 * LD_PRELOAD into a process that stays alive while the daemon examines it.
 */
void *d2i_X509(void *a, const unsigned char **in, long len);

int SSL_ctrl(void *s, int cmd, long larg, void *parg)
{
	return d2i_X509(0, 0, 0) != 0;
}

int SSL_set_fd(void *s, int fd)
{
	return 0;
}

int OPENSSL_init_ssl(unsigned long long opts, const void *settings)
{
	return 1;
}

__asm__(".text\n.globl pw_slow_code\n.type pw_slow_code, @function\npw_slow_code:\n"
	".fill 67108864, 1, 0x90\nret\n");
