# shellcheck shell=sh
# Settings of the db image (scripts/molecule/build-image.sh runs this in the image's root after its packages are
# installed), so that no scenario pays for them at every run:
# - PostgreSQL and MariaDB listen on their Unix sockets only: the backup scenario shares the host's network, and the
#   servers start at the container's boot, before any prepare step could change their settings.
# - Samba's daemons do not start at boot: only the write_freeze scenario serves a share, and its prepare.yml writes
#   smb.conf and starts smbd itself (nmbd and the AD DC are never used).
printf "listen_addresses = ''\n" >/etc/postgresql/15/main/conf.d/ledgerguard.conf
printf '[mysqld]\nskip-networking\n' >/etc/mysql/mariadb.conf.d/99-ledgerguard.cnf
systemctl disable smbd.service nmbd.service samba-ad-dc.service
