"""A deterministic corpus of benign HTTP requests, as normal API traffic to agents looks.

`benign_requests(n, seed)` mixes, with one `random.Random(seed)`:

* A2A JSON-RPC calls (`message/send`, `tasks/get`) whose text parts are user messages:
  prose in a dozen languages, with apostrophes, quotes, parentheses, URLs, e-mail addresses,
  prices, dates, and the everyday English words that are also SQL, HTML or shell words
  ("select", "union", "drop", "order by", "script", "from", "and", "or", "find", "cat");
* REST reads with filters, sorting, pagination and search queries;
* HTML form posts (sign-up, contact, feedback) with free-text comments;
* multipart uploads of PDF files (real PDF structure, compressed-looking streams) with the
  file names people give documents, next to text fields;
* plain-text and Markdown-free prose bodies;
* the fetches every agent gets: agent cards under `/.well-known/`, health checks, metrics.

Headers are those real clients send: browser, SDK and command-line user agents (and Bastion's
own agent client), Accept, Accept-Language, Authorization, correlation IDs, referers, cookies.
"""

# ruff: noqa: RUF001 (the corpus holds text in many scripts on purpose)
from __future__ import annotations

import json
import random
import uuid
import zlib
from dataclasses import dataclass
from urllib.parse import quote, urlencode

__all__ = ["BenignRequest", "benign_requests"]


@dataclass(frozen=True, slots=True)
class BenignRequest:
    kind: str
    method: str
    uri: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "bastion-agent-client/0.1.0",
    "python-httpx/0.27.0",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "okhttp/4.12.0",
    "axios/1.6.8",
    "Go-http-client/2.0",
    "PostmanRuntime/7.37.3",
    "a2a-python-sdk/0.2.5",
)
LANGUAGES = (
    "en-US,en;q=0.9",
    "fr-FR,fr;q=0.9,en;q=0.8",
    "de-DE,de;q=0.9",
    "es-ES,es;q=0.9",
    "ja-JP,ja;q=0.9",
    "pt-BR,pt;q=0.9",
    "zh-CN,zh;q=0.9",
    "pl-PL,pl;q=0.9,en;q=0.7",
)

# Sentences people write to support agents, assistants and forms.
ENGLISH = (
    "Can you select the best three options from the list and send them to me?",
    "I'd like to order by Friday if that's possible.",
    "Please drop the last two items from my cart, I don't need them anymore.",
    "The union meeting was moved to Thursday at 3 pm.",
    "Which script should I run to regenerate the monthly report?",
    "My order #48213 hasn't arrived yet; could you check where it is?",
    "We're comparing plans: is the annual one cheaper than monthly or not?",
    "Select all that apply: travel, food, or accommodation.",
    "I can't log in since yesterday and I've already reset my password twice.",
    "Sort the results by date and then by price, please.",
    "What's the difference between the Pro and the Team plan?",
    "The invoice from March shows 1,250.00 EUR but we paid 1,200.00 EUR.",
    "Find me a flight from Paris to New York on the 14th, window seat if possible.",
    "I don't want to drop out of the course, I just need more time.",
    "Where can I find the terms and conditions for the refund?",
    "Our cat knocked the router off the desk and now the Wi-Fi is down.",
    "The movie script was rewritten twice before filming started.",
    "Is it true that the union and the management reached an agreement?",
    "Please update my address: 221B Baker Street, London NW1 6XE.",
    "He said \"it's fine\" but it clearly wasn't fine.",
    "Could you summarise the attached contract in plain English?",
    "I'm allergic to nuts and shellfish; does the menu have options for me?",
    "The delivery window is between 9 and 12, or between 2 and 5.",
    "My daughter's school sent a form; where do I sign it?",
    "Order by phone was easier than the website, honestly.",
    "Translate 'good morning, how are you?' into Italian and Spanish.",
    "See https://example.com/help/billing?topic=refunds#section-2 for details.",
    "You can reach me at jane.doe+support@example.org or on 020 7946 0958.",
    "Meeting notes (draft): budget, hiring, and the Q3 roadmap.",
    "What time does the store close on Sundays and public holidays?",
    "I'd rather not share my phone number, e-mail is fine.",
    "The kids dropped their ice cream and cried for ten minutes.",
    "Please select a date from the calendar below and confirm.",
    "It's 50% off until Monday - or so the ad said.",
    "Compare the two quotes and tell me which one is better value.",
    "I paid twice for the same subscription, can you refund one of them?",
    "The package was left at the door and someone took it.",
    "Do you ship to Canada, or only within the EU?",
    "Can I change the delivery address after the order is placed?",
    "We need 12 chairs and 3 tables for the event on May 3rd.",
    "My flight was cancelled; what are my options for a refund or rebooking?",
    "The app crashes when I open the settings page on Android 14.",
    "Write a short thank-you note for my colleague's farewell card.",
    "How long does it take to process a return once it's received?",
    "There's a typo on page 3: 'recieve' should be 'receive'.",
    "Let's drop the subject for now and talk about it on Monday.",
    "I want to cancel my membership at the end of this month.",
    "Is breakfast included, and what time is check-out?",
    "Can you find the cheapest option with free cancellation?",
    "The report says sales rose 4.5% year over year (see table 2).",
    "My name is O'Connor, not O'Conner; please correct it on the ticket.",
    "The select committee will publish its findings next week.",
    "Rock 'n' roll isn't dead, it's just resting.",
    "What's the weather going to be like in Lisbon this weekend?",
    "Put the kettle on, I'll be home in 20 minutes.",
    "Our team uses the script editor every day; it's been reliable.",
    "Both the union and the employer said talks were productive.",
    "If the parcel doesn't arrive by Tuesday, I'll ask for a refund.",
    "Please add milk, eggs, bread and coffee to the shopping list.",
    "How do I export my data and then delete my account?",
    "Tickets are 12 dollars for adults and 6 for kids under 12.",
    "The bus from the airport to the city centre takes about 40 minutes.",
    "I'd appreciate it if someone could call me back before 5.",
    "We've been customers since 2015 and we've never had this problem.",
    "Could you cat-sit for us from the 2nd to the 9th of August?",
    "The drop-off point is next to the main entrance, on the left.",
    "Can you recommend a good book about the history of Rome?",
    "I've attached the signed form and a copy of my ID.",
    "The exam is on Wednesday; I still have two chapters to read.",
    "Prices shown exclude VAT and delivery.",
    "Our office is closed between Christmas and New Year's Day.",
    "What's the best way to get from the station to the hotel?",
    "Either the blue one or the green one works for me.",
    "Please don't call before 9 am, I work night shifts.",
    "Who is responsible for updating the shared calendar?",
    "The chairs we ordered are too tall for the tables.",
    "Can I pay by bank transfer instead of card?",
    "Remind me to renew my passport in June.",
    "Where's the nearest pharmacy that's open late?",
    "The order confirmation says 2 items but the box had 3.",
    "Sorry for the late reply - I was away on holiday.",
    "I'm not sure whether to pick the 256 GB or the 512 GB model.",
    "Please send the minutes to everyone who attended, and to Mark.",
    "The train was delayed by 45 minutes because of a signal failure.",
    "Let me know if Thursday or Friday suits you better.",
    "Loved it!!! 5 stars :-) would buy again ;)",
    "Two options: 1) refund the order, 2) send a replacement. I'd prefer 2).",
    "The file is saved under Documents/Reports/2024/March, is that the right place?",
    "Price went from $49.99 to $59.99 overnight - why?",
    "Meet at 10:30 or 11:00? Either is fine <3",
    "Check the FAQ at https://help.example.com/faq?lang=en&section=returns#q7 first.",
    "Is the 'Select' plan (the cheapest one) available in Ireland?",
    "Best regards, Dr. A. O'Neill & Partners Ltd.",
    "I said \"no\" and they said 'OK' - then charged me anyway!",
    "Ordered 3 x 500 ml bottles; got 2 x 1 l instead. Not the same!",
    "Can you union the two guest lists and drop the duplicates?",
    "From 01/04/2024 to 30/06/2024 I was abroad (Spain & Portugal).",
    "Our wedding is on 12.08 - table plan attached, seats 1-120.",
    "Hi team, re: ticket #5521 -- any update? Thx.",
    "Use code SUMMER-2024 at checkout for 10% off (min. spend 50 EUR).",
    "Hours: Mon-Fri 9-17, Sat 10-14, closed Sun & bank holidays.",
    "My username is jane_doe_88 and my order ref is ORD/2024/00981.",
    "Please delete my data (GDPR art. 17) and confirm by e-mail.",
    "5/5 - fast delivery, nice packaging, great support :)",
    "The sign said 'Exit only' but people kept coming in that way.",
    "Where do I find settings > privacy > cookies on the app?",
    "It costs 1.299,00 € here vs. 1,199.00 $ on the US site.",
    "Not sure if this is a bug or a feature... the page just reloads.",
    "We'll need the projector, the whiteboard and 2-3 extension cords.",
    "Ping me when you're back, I'll be around until 6ish.",
    "Can I get a window seat? Row 12 or anything before row 20.",
    "Drop-down menus don't work on my phone (iOS 17.4, Safari).",
    "I was charged twice: once on 3/3 and again on 3/5.",
    "Cats vs. dogs: which is better for a small flat?",
    "Order by 2 pm for next-day delivery, or by 11 am on Saturdays.",
)
OTHER_LANGUAGES = (
    "Bonjour, je voudrais savoir où en est ma commande, s'il vous plaît.",
    "J'ai reçu la facture mais le montant n'est pas le bon.",
    "Pourriez-vous m'envoyer le lien pour réinitialiser mon mot de passe ?",
    "Guten Tag, ich möchte meine Bestellung stornieren.",
    "Können Sie mir sagen, wann das Paket ankommt?",
    "Die Rechnung enthält einen Fehler bei der Mehrwertsteuer.",
    "Hola, ¿me podrías decir el horario de atención al cliente?",
    "Quiero devolver el producto porque llegó dañado.",
    "¿Cuánto tarda el envío a Valencia?",
    "Ciao, vorrei sapere se è possibile cambiare l'indirizzo di consegna.",
    "L'ordine è arrivato ma manca un articolo.",
    "Olá, gostaria de saber o estado do meu pedido.",
    "Não consigo entrar na minha conta desde ontem.",
    "Hallo, kunnen jullie de levering naar volgende week verplaatsen?",
    "Dzień dobry, chciałbym zmienić adres dostawy.",
    "Здравствуйте, подскажите, пожалуйста, когда будет доставка?",
    "Мне пришёл не тот товар, что я заказывал.",
    "Καλημέρα, θα ήθελα να ακυρώσω την κράτησή μου.",
    "Merhaba, siparişim ne zaman kargoya verilecek?",
    "مرحبا، أود معرفة حالة طلبي من فضلك.",
    "שלום, אני רוצה לבטל את ההזמנה שלי.",
    "नमस्ते, मेरा ऑर्डर अभी तक नहीं आया है।",
    "你好，我想查询一下我的订单状态。",
    "请问可以开具增值税发票吗？",
    "こんにちは、注文した商品がまだ届いていません。",
    "返品の手続きを教えていただけますか。",
    "안녕하세요, 주문 취소를 요청하고 싶습니다.",
    "Xin chào, tôi muốn đổi địa chỉ giao hàng.",
    "Hej, jag vill avboka min tid på fredag.",
    "Hei, voisitteko lähettää laskun uudelleen?",
    "Dobrý den, kdy mi přijde objednávka?",
    "Szia, szeretném módosítani a rendelésemet.",
    "Bună ziua, aș dori să anulez comanda.",
    "Selamat pagi, apakah pesanan saya sudah dikirim?",
    "สวัสดีครับ ผมต้องการยกเลิกคำสั่งซื้อ",
)
SEARCHES = (
    "wireless headphones",
    "best pizza near me",
    "how to reset router",
    "union square hotels",
    "select comfort mattress",
    "drop leaf table",
    "order by phone",
    "java script tutorial",
    "what time is it in tokyo",
    "cheap flights paris",
    "o'reilly books",
    "rock & roll history",
    "coffee grinder burr vs blade",
    "python list sort by key",
    "kids bikes 20 inch",
    "tax return deadline 2024",
    "weather berlin",
    "translate bonjour",
    "recette crêpes",
    "receta paella valenciana",
    "café près de moi",
    "北京 天气",
    "東京 ラーメン",
    "서울 맛집",
    "100% cotton t-shirt",
    "usb-c to hdmi adapter",
    "how do i find my ip address",
    "cat food for kittens",
    "drop shipping explained",
    "shakespeare's sonnets",
    "c++ vs rust",
    "price < 50 shoes",
    "size 10-12 boots",
    "new york -> boston train",
    "node.js vs deno",
    "SELECT committee report 2023",
    "what does 'ad hoc' mean",
    "ikea billy bookcase",
    "best sci-fi books of all time",
    "how to make sourdough bread",
    "copy and paste shortcut",
    "diff between affect and effect",
    "time zone converter",
    "head and shoulders shampoo",
)
FIRST = (
    "Anna",
    "Luca",
    "María",
    "Jean-Luc",
    "Zoë",
    "Mohammed",
    "Wei",
    "Aiko",
    "Siobhan",
    "Pat",
    "D'Arcy",
    "Bjørn",
    "Olamide",
    "Priya",
    "Kim",
)
LAST = (
    "O'Brien",
    "Müller",
    "García",
    "Dubois",
    "Nakamura",
    "Kowalski",
    "Smith-Jones",
    "D'Angelo",
    "Nguyen",
    "Øvergaard",
    "Rossi",
    "Papadopoulos",
    "van der Berg",
    "Ali",
)
FILE_NAMES = (
    "invoice_2024-03.pdf",
    "Invoice #10482.pdf",
    "contract (signed).pdf",
    "CV - Maria Garcia.pdf",
    "scan0001.pdf",
    "Q3 report FINAL v2.pdf",
    "rental agreement.pdf",
    "boarding-pass.pdf",
    "Rechnung_März_2024.pdf",
    "facture n°2024-118.pdf",
    "payslip_may.pdf",
    "tax return 2023.pdf",
    "John's passport copy.pdf",
    "order_48213_receipt.pdf",
    "meeting notes 12.04.pdf",
    "報告書.pdf",
    "presentation-select-committee.pdf",
    "union_agreement_draft.pdf",
)
SORTS = ("date", "-date", "price", "name", "created_at", "-updated_at", "relevance")


def _prose(rng: random.Random, sentences: int) -> str:
    pool = ENGLISH if rng.random() < 0.7 else OTHER_LANGUAGES
    return " ".join(rng.choice(pool) for _ in range(sentences))


def _headers(rng: random.Random, content_type: str | None = None) -> list[tuple[str, str]]:
    agent = rng.choice(USER_AGENTS)
    headers = [
        ("Host", "agents.example.com"),
        ("User-Agent", agent),
        (
            "Accept",
            rng.choice(
                (
                    "application/json",
                    "*/*",
                    "application/json, text/plain, */*",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                )
            ),
        ),
        ("Accept-Language", rng.choice(LANGUAGES)),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("X-Correlation-ID", str(uuid.UUID(int=rng.getrandbits(128)))),
    ]
    if rng.random() < 0.6:
        token = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_") for _ in range(120)
        )
        headers.append(("Authorization", f"Bearer eyJ{token}"))
    if agent.startswith("Mozilla") and rng.random() < 0.6:
        headers.append(
            (
                "Referer",
                rng.choice(
                    (
                        "https://agents.example.com/",
                        "https://www.google.com/",
                        "https://agents.example.com/app/orders?page=2&sort=-date",
                        "https://agents.example.com/search?q=order+by+phone",
                    )
                ),
            )
        )
        consent = quote(json.dumps({"analytics": True, "ads": False}))
        headers.append(
            (
                "Cookie",
                f"session={uuid.UUID(int=rng.getrandbits(128)).hex}; "
                f"theme={rng.choice(('dark', 'light'))}; lang=en; consent={consent}; "
                f"_ga=GA1.2.{rng.randint(10**8, 10**9)}.{rng.randint(10**9, 2 * 10**9)}",
            )
        )
    if content_type:
        headers.append(("Content-Type", content_type))
    return headers


def _json_rpc(rng: random.Random) -> BenignRequest:
    text = _prose(rng, rng.randint(1, 4))
    if rng.random() < 0.2:
        params: dict[str, object] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "historyLength": rng.randint(1, 20),
        }
        method = "tasks/get"
    else:
        params = {
            "message": {
                "role": "user",
                "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
                "parts": [{"kind": "text", "text": text}],
                "metadata": {
                    "locale": rng.choice(("en-GB", "fr-FR", "ja-JP")),
                    "channel": rng.choice(("web", "mobile", "email")),
                },
            }
        }
        method = "message/send"
    body = {"jsonrpc": "2.0", "id": rng.randint(1, 10**6), "method": method, "params": params}
    return BenignRequest(
        "json_api",
        "POST",
        "/",
        tuple(_headers(rng, "application/json")),
        json.dumps(body, ensure_ascii=rng.random() < 0.5).encode(),
    )


def _rest_json(rng: random.Random) -> BenignRequest:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    body = {
        "customer": {
            "name": name,
            "email": f"user{rng.randint(1, 9999)}@example.com",
            "phone": f"+44 20 7946 {rng.randint(1000, 9999)}",
        },
        "items": [
            {
                "sku": f"SKU-{rng.randint(1000, 9999)}",
                "qty": rng.randint(1, 5),
                "note": rng.choice(
                    (
                        "",
                        "gift wrap please",
                        "leave at the door",
                        "no rush",
                        "select the blue one if available",
                    )
                ),
            }
            for _ in range(rng.randint(1, 3))
        ],
        "comment": _prose(rng, rng.randint(0, 2)),
        "delivery": {
            "date": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "window": rng.choice(("9-12", "12-15", "15-18")),
        },
        "website": rng.choice(("https://example.com", "http://shop.example.org/p?id=12", "")),
    }
    method = rng.choice(("POST", "PUT", "PATCH"))
    uri = rng.choice(
        (
            "/api/v1/orders",
            f"/api/v1/orders/{rng.randint(1, 99999)}",
            "/api/v1/customers",
            "/api/v1/feedback",
        )
    )
    return BenignRequest(
        "json_api", method, uri, tuple(_headers(rng, "application/json")), json.dumps(body).encode()
    )


def _search(rng: random.Random) -> BenignRequest:
    params = [("q", rng.choice(SEARCHES))]
    if rng.random() < 0.5:
        params.append(("sort", rng.choice(SORTS)))
    if rng.random() < 0.5:
        params.append(("page", str(rng.randint(1, 40))))
    if rng.random() < 0.3:
        params.append(("filter[category]", rng.choice(("books", "home & garden", "toys"))))
    if rng.random() < 0.3:
        params.append(("utm_source", rng.choice(("newsletter", "google", "twitter"))))
    path = rng.choice(("/search", "/api/v1/search", "/api/v1/products"))
    return BenignRequest("search", "GET", f"{path}?{urlencode(params)}", tuple(_headers(rng)), b"")


def _rest_get(rng: random.Random) -> BenignRequest:
    uri = rng.choice(
        (
            "/.well-known/agent-card.json",
            "/.well-known/agent.json",
            "/healthz",
            "/readyz",
            "/metrics",
            f"/api/v1/orders/{rng.randint(1, 99999)}",
            "/api/v1/orders?status=shipped&from=2024-01-01&to=2024-03-31"
            f"&limit={rng.randint(10, 100)}",
            f"/api/v1/users/{uuid.UUID(int=rng.getrandbits(128))}/invoices?year=2023",
            "/static/app.4f9c2.js",
            "/static/styles.css",
            "/favicon.ico",
            "/robots.txt",
            f"/api/v1/documents/{rng.randint(1, 9999)}/download?format=pdf",
            "/api/v1/products?fields=id,name,price&sort=-price&per_page=50",
            "/api/v1/events?select=upcoming&order=start_date.asc",
            "/oauth/token",
            "/api/v1/reports/2024/q1?region=emea&currency=EUR",
        )
    )
    return BenignRequest("rest_get", "GET", uri, tuple(_headers(rng)), b"")


def _form(rng: random.Random) -> BenignRequest:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    fields = rng.choice(
        (
            [
                ("name", name),
                ("email", f"{name.split()[0].lower()}@example.com"),
                ("subject", rng.choice(("Order question", "Refund", "Feedback", "Partnership"))),
                ("message", _prose(rng, rng.randint(1, 5))),
                ("newsletter", "on"),
            ],
            [
                ("username", name.split()[0].lower() + str(rng.randint(1, 99))),
                (
                    "password",
                    "".join(rng.choice("abcXYZ123!@#$%^&*()_+-=[]{};:,.<>/?") for _ in range(14)),
                ),
                ("remember_me", "1"),
            ],
            [
                ("rating", str(rng.randint(1, 5))),
                ("comment", _prose(rng, rng.randint(1, 3))),
                ("would_recommend", rng.choice(("yes", "no", "maybe"))),
            ],
            [
                (
                    "address_line1",
                    f"{rng.randint(1, 300)} "
                    + rng.choice(("High St", "Rue de la Paix", "Hauptstraße")),
                ),
                ("address_line2", rng.choice(("", "Flat 2B", "c/o Smith & Co."))),
                ("city", rng.choice(("London", "Paris", "München", "São Paulo"))),
                ("postcode", rng.choice(("SW1A 1AA", "75002", "80331", "01310-100"))),
            ],
        )
    )
    return BenignRequest(
        "form",
        "POST",
        rng.choice(("/contact", "/login", "/feedback", "/account/address")),
        tuple(_headers(rng, "application/x-www-form-urlencoded")),
        urlencode(fields).encode(),
    )


def _pdf_bytes(rng: random.Random) -> bytes:
    """A small but structurally real PDF: header, objects, a deflated content stream, xref."""
    text = " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(5, 30)))
    content = f"BT /F1 11 Tf 72 720 Td ({text.replace('(', '').replace(')', '')}) Tj ET".encode()
    stream = zlib.compress(content)
    noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(200, 3000)))
    parts = [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n",
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /Contents 4 0 R /MediaBox [0 0 612 792] >>\n"
        b"endobj\n",
        b"4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream),
        stream,
        b"\nendstream\nendobj\n",
        b"5 0 obj\n<< /Length %d /Subtype /Image >>\nstream\n" % len(noise),
        noise,
        b"\nendstream\nendobj\n",
        b"6 0 obj\n<< /Producer (Microsoft Word for Microsoft 365) /Title ("
        + text[:60].encode()
        + b") >>\nendobj\n",
        b"xref\n0 7\n0000000000 65535 f \ntrailer\n<< /Size 7 /Root 1 0 R /Info 6 0 R >>\n",
        b"startxref\n1234\n%%EOF\n",
    ]
    return b"".join(parts)


def _multipart(rng: random.Random) -> BenignRequest:
    boundary = "----WebKitFormBoundary" + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789") for _ in range(16)
    )
    fields = [
        ("description", _prose(rng, rng.randint(1, 2))),
        ("category", rng.choice(("invoice", "contract", "id", "other"))),
    ]
    chunks = []
    for name, value in fields:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    filename = rng.choice(FILE_NAMES)
    chunks.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
    )
    chunks.append(_pdf_bytes(rng) + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return BenignRequest(
        "multipart_pdf",
        "POST",
        rng.choice(("/api/v1/documents", "/upload")),
        tuple(_headers(rng, f"multipart/form-data; boundary={boundary}")),
        b"".join(chunks),
    )


def _text_body(rng: random.Random) -> BenignRequest:
    return BenignRequest(
        "prose",
        "POST",
        rng.choice(("/api/v1/notes", "/api/v1/translate", "/summarise")),
        tuple(_headers(rng, "text/plain; charset=utf-8")),
        _prose(rng, rng.randint(2, 10)).encode(),
    )


_KINDS = (
    (_json_rpc, 30),
    (_rest_json, 12),
    (_search, 15),
    (_rest_get, 13),
    (_form, 12),
    (_multipart, 8),
    (_text_body, 10),
)


def benign_requests(count: int, seed: int) -> list[BenignRequest]:
    """`count` benign requests, the same ones for the same seed."""
    rng = random.Random(seed)
    makers = [maker for maker, _ in _KINDS]
    weights = [weight for _, weight in _KINDS]
    return [rng.choices(makers, weights)[0](rng) for _ in range(count)]
