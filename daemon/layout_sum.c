/*
 * The checksums other tools keep of a migration they ran (sqlx, Flyway),
 * computed from the text migd read, so that adopt --from can tell a file
 * edited since the tool ran it.  Pure.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <nettle/base16.h>
#include <nettle/sha2.h>

#include "layout.h"

/*
 * sqlx hashes the file's bytes as they are; migd keeps them without a BOM
 * and with CRLF made LF, so each way the file may have been saved is tried.
 */
int
layout_sqlx_sum_ok(const char *up, const char *hex)
{
	struct sha384_ctx	 ctx;
	uint8_t			 md[SHA384_DIGEST_SIZE];
	char			 got[2 * SHA384_DIGEST_SIZE + 1];
	const char		*p, *eol;
	int			 bom, crlf;

	for (bom = 0; bom < 2; bom++) {
		for (crlf = 0; crlf < 2; crlf++) {
			sha384_init(&ctx);
			if (bom)
				sha384_update(&ctx, 3,
				    (const uint8_t *)"\xef\xbb\xbf");
			for (p = up; *p != '\0'; p = eol + 1) {
				if ((eol = strchr(p, '\n')) == NULL) {
					sha384_update(&ctx, strlen(p),
					    (const uint8_t *)p);
					break;
				}
				sha384_update(&ctx, eol - p,
				    (const uint8_t *)p);
				sha384_update(&ctx, crlf ? 2 : 1,
				    (const uint8_t *)"\r\n" + !crlf);
			}
			sha384_digest(&ctx, sizeof md, md);
			base16_encode_update(got, sizeof md, md);
			got[sizeof got - 1] = '\0';
			if (strcasecmp(got, hex) == 0)
				return (1);
		}
	}
	return (0);
}

/*
 * Flyway's ChecksumCalculator: a CRC-32 of the script's lines without
 * their line breaks (and without a BOM), read as a Java int.  up has no
 * BOM and only LF breaks, so leaving out every CR and LF is the same.
 */
long
layout_flyway_sum(const char *up)
{
	uint32_t	 crc = 0xffffffffu;
	int		 k;

	for (; *up != '\0'; up++) {
		if (*up == '\n' || *up == '\r')
			continue;
		crc ^= (unsigned char)*up;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
	}
	crc ^= 0xffffffffu;
	return (crc > 0x7fffffffu ? -(long)(0xffffffffu - crc) - 1 :
	    (long)crc);
}
