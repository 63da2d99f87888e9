"""Shell command vocabularies for the remote command execution detector.

Three tiers, by how likely the word is to appear in ordinary text:

* `UNIQUE`: program names that are not English words (``whoami``, ``ifconfig``, ``certutil``);
  seeing one as a command is evidence on its own;
* `TOOLS`: program names that are also common words in technical writing or search queries
  (``python``, ``curl``, ``docker``); they count as commands only with shell-looking arguments;
* `WORDS`: program names that are everyday English words (``cat``, ``find``, ``time``); they
  count only after a command separator or a command prefix, with shell-looking arguments.

`PREFIXES` are commands that run another command (``time``, ``nohup``, ``strace`` ...).
"""

from __future__ import annotations

__all__ = ["PREFIXES", "TOOLS", "UNIQUE", "WORDS"]

UNIQUE = (
    r"whoami|ifconfig|ipconfig|iwconfig|visudo|vipw|cscli|busybox|toybox|zstdcat|bzcat"
    r"|xzcat|zcat|gunzip|unxz|bunzip2|bsdtar|netcat|ncat|socat|nohup|strace|ltrace"
    r"|lastlog|lastlogin|lastb|uconv|cpulimit|useradd|usermod|userdel|groupadd|adduser|chpasswd"
    r"|chmod|chown|chgrp|chattr|lsattr|mkfifo|mknod|nslookup|traceroute|tracepath|iptables"
    r"|ip6tables|systemctl|journalctl|crontab|xxd|hexdump|base32|base64|basenc|certutil"
    r"|bitsadmin|rundll32|regsvr32|mshta|wscript|cscript|tasklist|taskkill|powershell|pwsh"
    r"|iwr|iwmi|regedit|reg\.exe|bcdboot|bcdedit|wmic|schtasks|vssadmin|wevtutil|netsh"
    r"|ansible-[a-z]+|chef-[a-z]+|ssh-[a-z-]+|aa-[a-z-]+|rmt(?:-[a-z]+)?|lwp-[a-z]+"
    r"|doas|pkexec|gcc[\d.-]+|c89|c99|tcc|irb|gdb|lldb|ksh|zsh|csh|tcsh"
    r"|uname|netstat|lsof|pkill|killall|gawk|nawk|mawk|masscan|htop"
    r"|aptitude|apt-get|apt-cache|getfacl|setfacl|sestatus|getenforce|setenforce|dmesg"
    r"|modprobe|insmod|rmmod|lsmod|sysctl|sshpass|tcpdump|tshark|printenv|ls|ll|rm|mkdir"
    r"|rmdir|nc|sh|php\d+|python[\d.]+|perl\d+|ruby[\d.]+|luajit|tclsh|sqlite3|redis-cli"
    r"|crictl|xargs|uniq|tac|objdump|readelf|ldd|chroot|nsenter|unshare|setsid|pgrep|pidof"
    r"|lsblk|fdisk|umount|losetup|ldconfig|update-rc\.d|rc-service|launchctl|osascript|ifup"
    r"|ifdown|ping6|xterm|unrar|7za|uudecode|uuencode|envsubst|printf|wc"
)
TOOLS = (
    r"python|python3|php|perl|ruby|node|nodejs|deno|lua|docker|podman|mysql|psql|mongo|git"
    r"|java|npm|pip|pip3|go|make|cmake|ping|dig|host|whois|vi|vim|man|info|kill|env|id|who|w"
    r"|curl|wget|ssh|scp|sftp|rsync|telnet|bash|sudo|gcc|g\+\+|clang|kubectl|tmux|nano"
    r"|emacs|openssl|gpg|jq|yq|awk|sed|grep|egrep|fgrep|nmap|passwd|yum|dnf|rpm|dpkg|zypper"
    r"|apk|ansible|tftp|gzip|bzip2|zstd|7z|cp|mv|dd|ln|cpio|strings|perf|flock|nft|arp"
)
WORDS = (
    r"cat|find|time|more|less|head|tail|sort|test|wait|date|at|yes|watch|nice|top|sleep|read"
    r"|set|source|cd|ps|ss|mail|file|which|whereis|locate|split|join|paste|cut|tr|rev|expand"
    r"|type|dir|copy|del|ren|start|call|look|fmt|pr|diff|patch|touch|stat|du|df|free|uptime"
    r"|last|users|groups|finger|history|jobs|fg|bg|logout|exit|shutdown|reboot|halt"
    r"|poweroff|su|net|reg|sc|route|label|cmd|command|builtin|timeout|echo|tee|write|service"
    r"|screen|mount|wall|ed|ar|zip|tar|eval|exec|export|alias|column|bridge|fold|comm|trap"
    r"|unset|dash|od|nl|shred|iex|chef"
)
PREFIXES = r"time|nohup|strace|ltrace|sudo|doas|env|exec|nice|timeout|xargs|command|builtin"
