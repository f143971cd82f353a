"""Outlets: names, hosts and home time zones (to read offset-less times, and to
recognise an outlet in a byline)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

# --- outlets: names, hosts and home time zones -------------------------------------------


@dataclass(frozen=True, slots=True)
class Outlet:
    name: str
    hosts: tuple[str, ...] = ()
    tz: str | None = None  # IANA zone of the newsroom; None for wires with no single home
    aliases: tuple[str, ...] = ()


#: Outlets whose home time zone is known. Used to read wall-clock times that carry no
#: offset, and to recognise an outlet's name in a byline. Extend as sources are added.
OUTLETS: tuple[Outlet, ...] = (
    Outlet("China Daily", ("chinadaily.com.cn",), "Asia/Shanghai"),
    Outlet("Xinhua", ("xinhuanet.com", "news.cn"), "Asia/Shanghai", ("Xinhua News Agency",)),
    Outlet("Global Times", ("globaltimes.cn",), "Asia/Shanghai"),
    Outlet("CGTN", ("cgtn.com",), "Asia/Shanghai"),
    Outlet("People's Daily", ("people.com.cn",), "Asia/Shanghai", ("People's Daily Online",)),
    Outlet("South China Morning Post", ("scmp.com",), "Asia/Hong_Kong", ("SCMP",)),
    Outlet("The Japan Times", ("japantimes.co.jp",), "Asia/Tokyo"),
    Outlet("Kyodo News", ("kyodonews.net",), "Asia/Tokyo", ("Kyodo",)),
    Outlet("NHK World", ("nhk.or.jp",), "Asia/Tokyo", ("NHK",)),
    Outlet("Yonhap", ("yna.co.kr",), "Asia/Seoul", ("Yonhap News Agency",)),
    Outlet("The Korea Herald", ("koreaherald.com",), "Asia/Seoul"),
    Outlet("TASS", ("tass.com", "tass.ru"), "Europe/Moscow"),
    Outlet("RIA Novosti", ("ria.ru",), "Europe/Moscow"),
    Outlet("The Moscow Times", ("themoscowtimes.com",), "Europe/Moscow"),
    Outlet("The Times of India", ("timesofindia.indiatimes.com",), "Asia/Kolkata"),
    Outlet("The Hindu", ("thehindu.com",), "Asia/Kolkata"),
    Outlet("Dawn", ("dawn.com",), "Asia/Karachi"),
    Outlet("Al Jazeera", ("aljazeera.com", "aljazeera.net"), "Asia/Qatar"),
    Outlet("The Times of Israel", ("timesofisrael.com",), "Asia/Jerusalem"),
    Outlet("Haaretz", ("haaretz.com",), "Asia/Jerusalem"),
    Outlet("BBC News", ("bbc.co.uk", "bbc.com"), "Europe/London", ("BBC",)),
    Outlet("The Guardian", ("theguardian.com", "guardian.co.uk"), "Europe/London"),
    Outlet("The Telegraph", ("telegraph.co.uk",), "Europe/London"),
    Outlet("Financial Times", ("ft.com",), "Europe/London", ("FT",)),
    Outlet("Le Monde", ("lemonde.fr",), "Europe/Paris"),
    Outlet("Libération", ("liberation.fr",), "Europe/Paris", ("Liberation",)),
    Outlet("France 24", ("france24.com",), "Europe/Paris"),
    Outlet("Deutsche Welle", ("dw.com",), "Europe/Berlin", ("DW",)),
    Outlet("Der Spiegel", ("spiegel.de",), "Europe/Berlin", ("Spiegel",)),
    Outlet("The New York Times", ("nytimes.com",), "America/New_York", ("NYTimes", "NYT")),
    Outlet("The Washington Post", ("washingtonpost.com",), "America/New_York"),
    Outlet("The Wall Street Journal", ("wsj.com",), "America/New_York", ("WSJ",)),
    Outlet("CNN", ("cnn.com",), "America/New_York"),
    Outlet("The Seattle Times", ("seattletimes.com",), "America/Los_Angeles"),
    Outlet("Los Angeles Times", ("latimes.com",), "America/Los_Angeles"),
    Outlet("Folha de S.Paulo", ("folha.uol.com.br",), "America/Sao_Paulo"),
    Outlet("La Nación", ("lanacion.com.ar",), "America/Argentina/Buenos_Aires"),
    Outlet("Herald Sun", ("heraldsun.com.au",), "Australia/Melbourne"),
    Outlet("The Sydney Morning Herald", ("smh.com.au",), "Australia/Sydney"),
    # wire services: recognised as outlets in bylines, but no single home zone
    Outlet("Reuters", ("reuters.com",)),
    Outlet("Associated Press", ("apnews.com",), None, ("AP", "The Associated Press")),
    Outlet("AFP", ("afp.com",), None, ("Agence France-Presse",)),
    Outlet("Bloomberg", ("bloomberg.com",)),
)


def _name_key(name: str) -> str:
    name = unicodedata.normalize("NFKD", name.casefold())
    name = "".join(c for c in name if not unicodedata.combining(c))
    name = re.sub(r"\.(com|co\.uk|fr|de|cn|org|net)$", "", name.strip())
    name = re.sub(r"^the\s+", "", name)
    return re.sub(r"[^a-z0-9]", "", name)


_OUTLET_BY_NAME = {_name_key(alias): o for o in OUTLETS for alias in (o.name, *o.aliases)}


def _outlet_for(site_name: str | None = None, url: str | None = None) -> Outlet | None:
    if url:
        host = (urlsplit(url).hostname or "").lower()
        for o in OUTLETS:
            if any(host == h or host.endswith("." + h) for h in o.hosts):
                return o
    if site_name:
        return _OUTLET_BY_NAME.get(_name_key(site_name))
    return None
