"""Names for the same product that differ between nmap, NVD and endoflife.date.

nmap's service probes carry CPE vendor names from when each probe was written; NVD has since
renamed some vendors (nginx moved from igor_sysoev to f5), and endoflife.date lists some products
with no CPE at all. Each entry maps a (vendor, product) to the other names it goes by; lookups
try all of them. Keys and values are CPE vendor:product pairs, lower case.
"""

from __future__ import annotations

CPE_ALIASES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("igor_sysoev", "nginx"): (("f5", "nginx"), ("nginx", "nginx")),
    ("vsftpd", "vsftpd"): (("vsftpd_project", "vsftpd"), ("beasts", "vsftpd")),
    ("redislabs", "redis"): (("redis", "redis"),),
    ("mysql", "mysql"): (("oracle", "mysql"),),
    ("microsoft", "iis"): (("microsoft", "internet_information_services"),),
    ("memcached", "memcached"): (("memcached", "memcached"),),
    ("postgresql", "postgresql"): (("postgresql", "postgresql"),),
}

# endoflife.date products that name no CPE, by the CPE nmap reports for them
EOL_PRODUCTS_BY_CPE: dict[tuple[str, str], str] = {
    ("igor_sysoev", "nginx"): "nginx",
    ("f5", "nginx"): "nginx",
    ("redislabs", "redis"): "redis",
    ("redis", "redis"): "redis",
    ("memcached", "memcached"): "memcached",
    ("postgresql", "postgresql"): "postgresql",
    ("apache", "tomcat"): "tomcat",
    ("microsoft", "windows_server_2012"): "windows-server",
}

# Debian and Ubuntu source packages for products nmap fingerprints with a distro revision
DISTRO_SOURCE_PACKAGES: dict[tuple[str, str], str] = {
    ("openbsd", "openssh"): "openssh",
    ("apache", "http_server"): "apache2",
    ("igor_sysoev", "nginx"): "nginx",
    ("f5", "nginx"): "nginx",
    ("vsftpd", "vsftpd"): "vsftpd",
    ("proftpd", "proftpd"): "proftpd-dfsg",
    ("postfix", "postfix"): "postfix",
    ("exim", "exim"): "exim4",
    ("isc", "bind"): "bind9",
    ("samba", "samba"): "samba",
    ("dovecot", "dovecot"): "dovecot",
    ("redislabs", "redis"): "redis",
    ("memcached", "memcached"): "memcached",
}


def names_for(key: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """The key itself first, then every alias (in both directions)."""
    found = [key, *CPE_ALIASES.get(key, ())]
    for source, targets in CPE_ALIASES.items():
        if key in targets and source not in found:
            found.append(source)
            found += [t for t in targets if t not in found]
    return tuple(dict.fromkeys(found))
