"""Bot control: scanner, bad-bot and missing user agents (CRS 913 family and more).

Rules (ids ``bot.<rule>``, target ``header:user-agent``):

* ``bot.missing_user_agent``: no User-Agent header, or one that is empty or blank;
* ``bot.scanner_user_agent``: the agent names a vulnerability scanner, an exploitation or
  brute-force tool, or a mass internet scanner (sqlmap, Nikto, Nuclei, Acunetix, zgrab ...);
* ``bot.bad_bot_user_agent``: the agent names a scraper or e-mail harvester framework known
  for ignoring robots rules (``EmailCollector``, ``WebZIP``, ``HTTrack`` ...).

Names are matched as whole tokens, case-insensitively, anywhere in the header (scanners often
append their name to a browser string). Bastion's own agent client (`protocol.endpoints.USER_AGENT`,
``bastion-agent-client/<version>``) is allowed before any rule runs.
"""

from __future__ import annotations

import re

from bastion.edge.request import InspectedRequest
from bastion.edge.rules import RuleMatch
from bastion.protocol.endpoints import USER_AGENT

__all__ = ["bot_matches"]

_TARGET = "header:user-agent"
_OWN_CLIENT = re.compile(re.escape(USER_AGENT.split("/", 1)[0]) + r"/[\w.+-]+")
_SCANNERS = re.compile(
    r"(?<![a-z0-9])(?:sqlmap|nikto|nuclei|nessus|openvas|acunetix|netsparker|invicti|appscan"
    r"|webinspect|arachni|w3af|skipfish|wapiti|vega|zaproxy|owasp[ _-]?zap|burp(?:suite)?"
    r"|havij|pangolin|sqlninja|bsqlbf|absinthe|dirbuster|dirb|gobuster|feroxbuster|ffuf"
    r"|wfuzz|nmap|masscan|zgrab|zmap|wpscan|joomscan|droopescan|whatweb|wafw00f|commix"
    r"|xsstrike|dalfox|thc-hydra|ncrack|metasploit|msfconsole|jaeles|httpx-?toolkit"
    r"|qualys|nexpose|rapid7|detectify|intruder\.io|probely|censysinspect|expanse"
    r"|internet-?measurement|leakix|l9explore|l9tcpid|netsystemsresearch|odin\.io"
    r"|paros|grabber|fimap|bbqsql|jbrofuzz|webshag|uniscan|xspider|sf\s?scanner"
    r"|morfeus|zmeu|muieblackcat|struts-?pwn|crimscanner|cgichk|nsauditor"
    r"|webvulnscan|n-stealth|nstealth|httprint|t3versions)(?![a-z])"
)
_BAD_BOTS = re.compile(
    r"(?<![a-z0-9])(?:emailcollector|emailsiphon|emailwolf|extractorpro|webzip|httrack"
    r"|webcopier|webstripper|websauger|webreaper|teleport\s?pro|offline\s?explorer"
    r"|sitesnagger|blackwidow|grabnet|atspider|cherrypicker|contentsmartz"
    r"|emailspider|mj12bot|dotbot|blexbot|seekport|megaindex|petalbot|dataforseo"
    r"|serpstatbot|scrapy|python-urllib/1|libwww-perl|lwp-trivial"
    r"|mass downloader|getright|go!zilla|flashget)(?![a-z])"
)


def bot_matches(req: InspectedRequest) -> list[RuleMatch]:
    """Return the bot-control matches for `req` (empty for ordinary clients and Bastion's own)."""
    agent = (req.user_agent or "").strip()
    if not agent:
        return [RuleMatch("bot.missing_user_agent", "bot", _TARGET)]
    if _OWN_CLIENT.fullmatch(agent):
        return []
    lowered = agent.lower()
    if _SCANNERS.search(lowered):
        return [RuleMatch("bot.scanner_user_agent", "bot", _TARGET)]
    if _BAD_BOTS.search(lowered):
        return [RuleMatch("bot.bad_bot_user_agent", "bot", _TARGET)]
    return []
