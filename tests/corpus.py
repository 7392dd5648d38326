"""A labelled, synthetic corpus of support escalations, for measuring clustering.

Deterministic from a seed. Each escalation is one customer's report of one of 36
underlying problems (its `label`), or an unrelated one-off (a label of its own). What the
corpus assumes, and where it is hard on purpose:

- **Reports of one problem share a core wording, not one text.** Escalations are written
  by tier-1 agents (who use the team's words for a problem: "BTC withdrawal stuck in
  pending") or by customers pasting what the app showed them ("Payment declined (E1042)").
  Around that core each problem has three to five phrasings: other word order and verbs,
  added details (a txid, hours, an amount), agent shorthand ("cust reports ...").
- **Languages are mixed.** Some problems are regional and reported in German, Spanish or
  French; most problems also get a few per cent of reports in another language, in a
  German and English mix, or freely paraphrased. A string matcher cannot tell that
  "BTC-Auszahlung hängt" is "BTC withdrawal stuck": those reports form clusters of their
  own and cost recall, as they would in service.
- **Noise is real**: typos (swapped, dropped, doubled or neighbouring-key letters) in a
  third of the reports, every hash, address, amount, ticket, e-mail, URL, date and time
  different per report and written in several formats, greetings and sign-offs with names
  in most, generic sentences shared by all problems ("This is the second time this week."),
  a fifth of the reports in lower case and some shouted.
- **Hard negatives**: problems with the same category and component and the same words,
  told apart by one asset (BTC / USDT withdrawals stuck, ETH / SOL staking rewards
  missing), one network (USDT on TRC20 / ERC20, bridges to Polygon / Arbitrum), one error
  code (card payment declined E1042 / E1043) or a few words (2FA codes by SMS / e-mail).
- **One-offs** (10 % by default) are questions composed from frames, verbs, things and
  details, filed under the problems' categories and a general one; two can share a verb,
  a thing or a detail sentence, and a few read alike, yet each has a label of its own.

Times: each problem is active in a burst (6 hours to 4 days) or chronically over the whole
span; reports are spread uniformly inside. `generate(...)` returns the escalations in time
order. `replicas=N` makes N regional copies of every problem (the component suffixed by a
region, a label of its own), for volumes where clusters must number in the thousands.
`pairwise(...)` scores a clustering against the labels.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass(frozen=True)
class Escalation:
    """One escalated support case as the clusterer sees it, with its true problem."""

    text: str
    category: str
    component: str
    customer: str
    at: datetime
    label: str


@dataclass(frozen=True)
class Problem:
    """An underlying problem: where it is filed, how its reports read, how often."""

    label: str
    category: str
    component: str
    weight: float
    phrasings: tuple[str, ...]  # the usual ones, equally likely
    # Other languages and free paraphrases, as (language, template): `rare_share` of reports.
    rare: tuple[tuple[str, str], ...] = ()
    rare_share: float = 0.03
    language: str = "en"  # of the usual phrasings: picks greetings and sign-offs
    chronic: bool = False  # reported over the whole span, not in a burst


# --- The problems ---------------------------------------------------------------------------
# Slots ({...}) are filled per report; see `_Slots`.

PROBLEMS: tuple[Problem, ...] = (
    Problem(
        "btc-withdrawal-stuck",
        "withdrawals",
        "crypto",
        9,
        (
            "My BTC withdrawal is stuck in pending since {time}. Txid: {btc_tx}",
            "BTC withdrawal stuck in pending for {hours} hours, amount {btc_amount}, txid {btc_tx}",
            "BTC withdrawal of {btc_amount} stuck in pending, nothing arrived at {btc_addr}",
            "cust reports BTC withdrawal stuck in pending >{hours}h, txid {btc_tx}",
            "Withdrawal of BTC still stuck in pending status, txid {btc_tx}",
        ),
        rare=(
            ("de", "Meine BTC-Auszahlung hängt seit {hours} Stunden auf ausstehend. Txid {btc_tx}"),
            ("de", "Meine BTC withdrawal ist seit {hours} Stunden pending, txid {btc_tx}"),
            ("en", "Sent {btc_amount} out {hours} hours ago and it never left the exchange"),
        ),
    ),
    Problem(
        "usdt-trc20-withdrawal-stuck",
        "withdrawals",
        "crypto",
        7,
        (
            "My USDT withdrawal on TRC20 is stuck in pending since {time}. Address {trx_addr}",
            "USDT TRC20 withdrawal stuck in pending for {hours} hours, amount {usdt_amount}",
            "USDT withdrawal (TRC20) of {usdt_amount} stuck in pending, nothing arrived",
            "cust reports USDT TRC20 withdrawal stuck in pending >{hours}h, to {trx_addr}",
        ),
        rare=(("es", "Mi retiro de USDT por TRC20 sigue pendiente desde hace {hours} horas"),),
    ),
    Problem(
        "usdt-erc20-withdrawal-stuck",
        "withdrawals",
        "crypto",
        4,
        (
            "My USDT withdrawal on ERC20 is stuck in pending since {time}. Address {evm_addr}",
            "USDT ERC20 withdrawal stuck in pending for {hours} hours, amount {usdt_amount}",
            "USDT withdrawal (ERC20) of {usdt_amount} stuck in pending, nothing arrived",
            "cust reports USDT ERC20 withdrawal stuck in pending >{hours}h, to {evm_addr}",
        ),
    ),
    Problem(
        "eth-withdrawal-address-rejected",
        "withdrawals",
        "crypto",
        4,
        (
            "ETH withdrawal rejected: the app says the address {evm_addr} is invalid",
            "My ETH withdrawal to {evm_addr} is rejected, invalid address, but it is my wallet",
            "ETH withdrawal rejected with 'invalid address' for {evm_addr}",
            "cust ETH withdrawal rejected, address invalid ({evm_addr})",
        ),
        rare=(
            ("de", "Auszahlung an {evm_addr} abgelehnt: Adresse ungültig, ist meine ETH Wallet"),
        ),
    ),
    Problem(
        "withdrawal-fee-higher-than-quoted",
        "trading",
        "fees",
        5,
        (
            "The withdrawal fee charged was higher than quoted: quoted {eur_amount}, "
            "charged {eur_amount}",
            "Withdrawal fee higher than quoted in the app ({eur_amount} instead of {eur_amount})",
            "I was charged a withdrawal fee higher than the fee quoted before I confirmed",
            "cust says withdrawal fee charged higher than quoted, wants the difference back",
        ),
        chronic=True,
    ),
    Problem(
        "eth-deposit-not-credited",
        "deposits",
        "crypto",
        8,
        (
            "My ETH deposit is confirmed on chain but not credited to my account. Tx {evm_tx}",
            "ETH deposit of {eth_amount} confirmed on chain but not credited after {hours} hours",
            "ETH deposit confirmed on chain, still not credited: {evm_url}",
            "cust ETH deposit confirmed on chain, not credited, tx {evm_tx}",
            "Deposit of {eth_amount} to {evm_addr} confirmed on chain but not credited",
        ),
        rare=(
            ("es", "Mi depósito de ETH está confirmado en la blockchain pero no aparece"),
            ("en", "Where is my ether?? sent it yesterday, {evm_tx}"),
        ),
    ),
    Problem(
        "btc-deposit-not-credited",
        "deposits",
        "crypto",
        5,
        (
            "My BTC deposit is confirmed on chain but not credited to my account. Txid {btc_tx}",
            "BTC deposit of {btc_amount} confirmed on chain but not credited, {confs} "
            "confirmations",
            "BTC deposit confirmed on chain, still not credited after {hours} hours: {btc_tx}",
            "cust BTC deposit confirmed on chain, not credited, txid {btc_tx}",
        ),
    ),
    Problem(
        "xrp-deposit-missing-tag",
        "deposits",
        "crypto",
        3,
        (
            "XRP deposit sent without the destination tag, {xrp_amount} not credited",
            "I sent an XRP deposit without destination tag, please credit {xrp_amount} manually",
            "XRP deposit of {xrp_amount} without destination tag is missing, tx {btc_tx}",
            "cust forgot destination tag on XRP deposit, {xrp_amount} not credited",
        ),
        chronic=True,
    ),
    Problem(
        "sepa-deposit-delayed",
        "deposits",
        "fiat",
        6,
        (
            "Meine SEPA-Überweisung über {eur_amount} ist seit {days} Tagen nicht gutgeschrieben",
            "SEPA-Überweisung von {eur_amount} vom {date} wurde noch nicht gutgeschrieben",
            "Meine SEPA-Überweisung vom {date} ({eur_amount}) ist noch nicht gutgeschrieben",
            "Kunde: SEPA-Überweisung {eur_amount} seit {days} Tagen nicht gutgeschrieben",
        ),
        rare=(
            ("en", "My SEPA transfer of {eur_amount} sent on {date} has not been credited yet"),
            ("en", "SEPA deposit {eur_amount} not credited after {days} days"),
        ),
        rare_share=0.04,
        language="de",
    ),
    Problem(
        "spei-deposit-missing",
        "deposits",
        "fiat",
        4,
        (
            "Mi depósito por SPEI de {mxn_amount} no aparece en mi cuenta desde el {date}",
            "Depósito SPEI de {mxn_amount} del {date} no aparece en la cuenta",
            "Hice un depósito por SPEI de {mxn_amount} y no aparece en mi cuenta",
            "Cliente: depósito SPEI {mxn_amount} no aparece en la cuenta, referencia {ref}",
        ),
        language="es",
    ),
    Problem(
        "card-declined-e1042",
        "cards",
        "payments",
        8,
        (
            "Card payment declined with error E1042 at {merchant}",
            "My card payment keeps getting declined, the app shows E1042 ({merchant})",
            "Card payment of {eur_amount} at {merchant} declined (E1042)",
            "cust card payment declined E1042, {eur_amount} at {merchant}, card ending {last4}",
            "Card payment declined at {merchant}: error code E1042",
        ),
        rare=(("es", "Mi tarjeta es rechazada con el error E1042 en {merchant}"),),
    ),
    Problem(
        "card-declined-e1043",
        "cards",
        "payments",
        5,
        (
            "Card payment declined with error E1043 at {merchant}",
            "My card payment keeps getting declined, the app shows E1043 ({merchant})",
            "Card payment of {eur_amount} at {merchant} declined (E1043)",
            "cust card payment declined E1043, {eur_amount} at {merchant}, card ending {last4}",
        ),
    ),
    Problem(
        "card-3ds-timeout",
        "cards",
        "payments",
        4,
        (
            "3D Secure verification times out when I pay online, the payment fails",
            "Online payment fails: the 3D Secure verification times out at {merchant}",
            "3D Secure verification always times out, online card payment fails",
            "cust: 3D Secure verification times out, online payment at {merchant} fails",
        ),
        chronic=True,
    ),
    Problem(
        "card-blocked-abroad",
        "cards",
        "payments",
        3,
        (
            "Ma carte est bloquée à l'étranger, paiement refusé chez {merchant}",
            "Carte bloquée à l'étranger, tous mes paiements sont refusés depuis le {date}",
            "Je suis en voyage, ma carte est bloquée à l'étranger, paiement de {eur_amount} refusé",
        ),
        rare=(("en", "My card is blocked since I am abroad, payments refused at {merchant}"),),
        rare_share=0.04,
        language="fr",
    ),
    Problem(
        "sms-2fa-not-arriving",
        "auth",
        "2fa",
        9,
        (
            "I do not receive the 2FA SMS code, so I cannot log in",
            "2FA SMS code not arriving, tried {n} times since {time}",
            "The 2FA code by SMS never arrives, I cannot log in to my account",
            "cust not receiving 2FA SMS codes, phone {phone}, cannot log in",
            "2FA SMS code is not arriving on {phone}",
        ),
        rare=(
            ("es", "No me llega el SMS con el código 2FA, no puedo entrar en mi cuenta"),
            ("de", "Ich bekomme keine 2FA SMS mehr, kann mich nicht einloggen"),
        ),
        chronic=True,
    ),
    Problem(
        "email-2fa-not-arriving",
        "auth",
        "2fa",
        5,
        (
            "I do not receive the 2FA code by e-mail, checked spam too",
            "2FA email code not arriving at {email}, checked the spam folder",
            "The 2FA code e-mail never arrives, spam folder is empty",
            "cust not receiving 2FA email codes at {email}",
        ),
    ),
    Problem(
        "totp-codes-rejected",
        "auth",
        "2fa",
        4,
        (
            "Google Authenticator codes are rejected as invalid, my phone time is correct",
            "Authenticator codes always rejected as invalid, tried {n} times",
            "My authenticator codes are rejected as invalid since {date}",
            "cust authenticator codes rejected as invalid, time sync checked",
        ),
        rare=(("fr", "Les codes de Google Authenticator sont refusés comme invalides"),),
    ),
    Problem(
        "ios-login-loop",
        "mobile",
        "ios",
        7,
        (
            "After the update to {version} the iOS app sends me back to the login screen",
            "iOS app login loop after update: I log in and it returns to the login screen",
            "Since the update to {version} the iOS app returns to the login screen after login",
            "cust on iOS stuck in login loop after app update {version}, back to login screen",
        ),
        rare=(("de", "Die iOS App wirft mich nach dem Login sofort wieder raus, seit {version}"),),
    ),
    Problem(
        "web-login-redirect-loop",
        "auth",
        "login",
        5,
        (
            "On the website, login redirects me back to the login page again and again",
            "Web login redirects back to the login page after entering my password",
            "Can't log in on the web, login keeps redirecting to the login page ({browser})",
            "cust web login redirect loop back to login page in {browser}, cookies cleared",
        ),
    ),
    Problem(
        "password-reset-link-expired",
        "auth",
        "login",
        4,
        (
            "The password reset link says it has expired as soon as I open it",
            "Password reset link expired immediately, requested it {minutes} minutes ago",
            "Every password reset link I get says expired when I open it",
            "cust: password reset link shows expired right away, tried {n} links",
        ),
        chronic=True,
    ),
    Problem(
        "kyc-upload-failing",
        "kyc",
        "verification",
        8,
        (
            "KYC document upload fails, the app says 'upload failed, try again'",
            "I can't upload my KYC document: upload failed each time ({filetype})",
            "KYC document upload keeps failing at {percent}%",
            "cust KYC document upload failing ({filetype}), tried app and web",
            "Upload of my passport for KYC fails with 'upload failed'",
        ),
        rare=(
            ("fr", "Le téléchargement de mes documents KYC échoue à chaque fois"),
            ("de", "KYC Upload klappt nicht, immer 'upload failed'"),
        ),
    ),
    Problem(
        "kyc-selfie-rejected",
        "kyc",
        "verification",
        5,
        (
            "My KYC selfie keeps getting rejected: face does not match the ID",
            "Selfie verification rejected {n} times, says face not matching the ID",
            "KYC selfie check rejected again: 'face does not match document'",
            "cust selfie verification rejected repeatedly, face not matching ID",
        ),
        chronic=True,
    ),
    Problem(
        "kyc-review-pending",
        "kyc",
        "verification",
        5,
        (
            "My verification has been under review for {days} days, account limited",
            "Verification still under review after {days} days, when will it be done?",
            "KYC verification under review for {days} days now, my account is limited",
            "cust verification under review for {days} days, account limited",
        ),
        rare=(("de", "Meine Verifizierung ist seit {days} Tagen in Prüfung, Konto eingeschränkt"),),
        chronic=True,
    ),
    Problem(
        "api-502-orders",
        "api",
        "gateway",
        7,
        (
            "REST API returns 502 Bad Gateway on POST /api/v2/orders",
            "Getting 502 Bad Gateway from POST /api/v2/orders since {time}",
            "Our trading bot gets 502 Bad Gateway on /api/v2/orders, {percent}% of requests",
            "API: POST /api/v2/orders answers 502 Bad Gateway, request id {uuid}",
        ),
    ),
    Problem(
        "api-429-below-limit",
        "api",
        "gateway",
        4,
        (
            "API returns 429 Too Many Requests although we are below the rate limit",
            "Getting 429 Too Many Requests at {n} requests per minute, far below the limit",
            "429 Too Many Requests on /api/v2/ticker while below the documented rate limit",
        ),
    ),
    Problem(
        "websocket-disconnects",
        "api",
        "streaming",
        5,
        (
            "The websocket feed disconnects every few minutes without a close frame",
            "Market data websocket disconnects every {minutes} minutes",
            "Websocket feed disconnects every few minutes since {date}, reconnect works",
            "cust websocket feed disconnecting every {minutes} min, no close frame",
        ),
        chronic=True,
    ),
    Problem(
        "wrong-balance-after-trade",
        "account",
        "balance",
        6,
        (
            "My balance is wrong after the trade, it shows {eur_amount} less than it should",
            "Balance shown after selling {btc_amount} is wrong, {eur_amount} missing",
            "Wrong balance after my trade at {time}: {eur_amount} missing",
            "cust balance wrong after trade, shows {eur_amount}, expected {eur_amount}",
        ),
        rare=(("de", "Mein Kontostand stimmt nach dem Trade nicht, es fehlen {eur_amount}"),),
    ),
    Problem(
        "eth-staking-rewards-missing",
        "earn",
        "staking",
        5,
        (
            "I did not receive my ETH staking rewards for this week",
            "ETH staking rewards missing since {date}, {eth_amount} staked",
            "No ETH staking rewards received for the last {days} days",
            "cust ETH staking rewards not received this week, staked {eth_amount}",
        ),
    ),
    Problem(
        "sol-staking-rewards-missing",
        "earn",
        "staking",
        4,
        (
            "I did not receive my SOL staking rewards for this epoch",
            "SOL staking rewards missing since epoch {n}, {n} SOL staked",
            "No SOL staking rewards received for the last {days} days",
            "cust SOL staking rewards not received this epoch, staked {n} SOL",
        ),
    ),
    Problem(
        "limit-order-not-filled",
        "trading",
        "orders",
        5,
        (
            "My limit order was not filled although the price reached my limit",
            "Limit buy order at {eur_amount} not filled, the price reached it at {time}",
            "The price reached my limit but the limit order was not filled, order {order}",
            "cust limit order not filled although price reached the limit, order {order}",
        ),
    ),
    Problem(
        "stop-loss-slipped",
        "trading",
        "orders",
        4,
        (
            "My stop loss was executed far below the stop price I set",
            "Stop loss at {eur_amount} executed at {eur_amount}, far below my stop price",
            "Stop loss order executed much lower than my stop price, order {order}",
        ),
    ),
    Problem(
        "bridge-polygon-stuck",
        "bridge",
        "transfers",
        6,
        (
            "My bridge transfer from Ethereum to Polygon is stuck, tx {evm_tx}",
            "Bridge transfer of {usdc_amount} to Polygon stuck for {hours} hours, tx {evm_tx}",
            "Bridge transfer to Polygon stuck, funds left Ethereum: {evm_url}",
            "cust bridge transfer to Polygon stuck >{hours}h, tx {evm_tx}",
        ),
    ),
    Problem(
        "bridge-arbitrum-stuck",
        "bridge",
        "transfers",
        4,
        (
            "My bridge transfer from Ethereum to Arbitrum is stuck, tx {evm_tx}",
            "Bridge transfer of {usdc_amount} to Arbitrum stuck for {hours} hours, tx {evm_tx}",
            "Bridge transfer to Arbitrum stuck, funds left Ethereum: {evm_url}",
            "cust bridge transfer to Arbitrum stuck >{hours}h, tx {evm_tx}",
        ),
    ),
    Problem(
        "statement-pdf-empty",
        "account",
        "statements",
        3,
        (
            "Mon relevé mensuel en PDF est vide, aucune transaction affichée",
            "Le relevé mensuel PDF de {month} est vide alors que j'ai fait des transactions",
            "Relevé mensuel PDF vide pour {month}, merci de corriger",
        ),
        rare=(("en", "My monthly PDF statement for {month} is empty, no transactions shown"),),
        rare_share=0.04,
        language="fr",
        chronic=True,
    ),
    Problem(
        "referral-bonus-missing",
        "account",
        "rewards",
        3,
        (
            "No he recibido el bono de referido, mi amigo ya completó la verificación",
            "El bono de referido no aparece en mi cuenta, invité a {email}",
            "Falta mi bono de referido de {eur_amount}, mi referido ya completó la verificación",
        ),
        language="es",
        chronic=True,
    ),
    Problem(
        "app-crash-android-chart",
        "mobile",
        "android",
        5,
        (
            "The Android app crashes when I open the price chart",
            "Android app crashes as soon as I open a chart, version {version}",
            "App crashes on Android {android} when opening the price chart",
            "cust Android app crash when opening the chart, {device}",
        ),
    ),
)

# --- Noise ----------------------------------------------------------------------------------

GREETINGS = {
    "en": (
        "Hi,",
        "Hello,",
        "Hi team,",
        "Hello support,",
        "Dear support team,",
        "Hey,",
        "Hi there,",
    ),
    "de": ("Hallo,", "Guten Tag,", "Hallo zusammen,", "Sehr geehrte Damen und Herren,"),
    "es": ("Hola,", "Buenos días,", "Hola equipo,"),
    "fr": ("Bonjour,", "Bonjour l'équipe,", "Madame, Monsieur,"),
}
SIGN_OFFS = {
    "en": ("Thanks", "Thank you, {name}", "Regards, {name}", "Please help asap!!", "Best, {name}"),
    "de": ("Danke", "Viele Grüße, {name}", "Bitte schnell helfen!", "MfG {name}"),
    "es": ("Gracias", "Saludos, {name}", "¡Ayuda por favor!"),
    "fr": ("Merci", "Cordialement, {name}", "Merci d'avance"),
}
EXTRAS = {
    "en": (
        "I already tried logging out and in again.",
        "This is the second time this week.",
        "Ticket {ticket} for reference.",
        "Customer says it worked yesterday.",
        "Screenshot attached.",
        "Contact: {email}",
        "See {help_url}",
        "VIP customer, account {account}.",
        "Order {order}.",
        "Reported on {date} at {time}.",
    ),
    "de": ("Ich habe es schon mehrmals versucht.", "Ticket {ticket}.", "Kontakt: {email}"),
    "es": ("Ya lo intenté varias veces.", "Ticket {ticket}.", "Contacto: {email}"),
    "fr": ("J'ai déjà essayé plusieurs fois.", "Ticket {ticket}.", "Contact : {email}"),
}
NAMES = (
    "Maria", "John", "Ana", "Lukas", "Sophie", "Ahmed", "Chen", "Olga", "Pierre", "Lucía",
    "Tom", "Aisha", "Jonas", "Emma", "Mateo", "Yuki", "Fatima", "Noah", "Clara", "Ivan",
)  # fmt: skip
MERCHANTS = (
    "Amazon", "Lidl", "Uber", "Netflix", "Zara", "Spotify", "Shell", "Ikea", "Rewe",
    "Carrefour", "Booking.com", "Apple Store", "Mercadona", "Decathlon", "Aldi",
)  # fmt: skip
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "Brave")
DEVICES = ("Samsung S23", "Pixel 7", "Xiaomi 13", "OnePlus 11", "Galaxy A54", "Moto G84")
MONTHS = ("January", "February", "March", "April", "May", "June")
FILETYPES = ("PDF", "JPG", "PNG", "HEIC")
DOMAINS = ("gmail.com", "web.de", "outlook.com", "yahoo.es", "orange.fr", "proton.me")

_TYPO_NEIGHBOURS = {
    "a": "sq", "s": "ad", "d": "sf", "e": "wr", "r": "et", "t": "ry", "i": "uo", "o": "ip",
    "n": "bm", "m": "n", "l": "k", "c": "xv", "u": "yi", "p": "o", "g": "fh", "h": "gj",
}  # fmt: skip

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


class _Slots:
    """Fresh values for a report's slots: every hash, amount and id differs per report."""

    def __init__(self, rng: random.Random, at: datetime) -> None:
        self.rng = rng
        self.at = at
        self._make = self._makers()

    def _hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def _digits(self, low: int, high: int) -> str:
        return str(self.rng.randint(low, high))

    def _amount(self, currency: str, low: float, high: float, places: int) -> str:
        value = self.rng.uniform(low, high)
        styles: list[Callable[[], str]] = [
            lambda: f"{value:,.{places}f} {currency}",
            lambda: f"{value:.{places}f} {currency}",
            lambda: f"{currency} {value:,.{places}f}",
        ]
        if currency == "EUR":
            styles += [
                lambda: f"€{value:,.2f}",
                lambda: f"{value:,.2f} €".replace(",", "X").replace(".", ",").replace("X", "."),
            ]
        return self.rng.choice(styles)()

    def _date(self) -> str:
        day = self.at - timedelta(days=self.rng.randint(0, 5))
        return self.rng.choice(
            (
                f"{day:%Y-%m-%d}",
                f"{day:%d.%m.%Y}",
                f"{day:%d/%m/%Y}",
                f"{day.day} {day:%B}",
                f"{day:%B} {day.day}",
            )
        )

    def _time(self) -> str:
        hour, minute = self.rng.randint(0, 23), self.rng.randint(0, 59)
        return self.rng.choice(
            (f"{hour:02d}:{minute:02d}", f"{hour}:{minute:02d} UTC", f"{hour % 12 + 1}pm")
        )

    def _choice(self, options: Sequence[str]) -> str:
        return self.rng.choice(options)

    def _base58(self, first: str, length: int) -> str:
        return first + "".join(self.rng.choice(_B58) for _ in range(length))

    def _btc_address(self) -> str:
        if self.rng.random() < 0.6:
            return "bc1q" + "".join(self.rng.choice(_BECH32) for _ in range(38))
        return self._base58("1", 33)

    def _evm_address(self) -> str:
        address = self._hex(40)
        if self.rng.random() < 0.5:  # checksummed-looking mixed case
            address = "".join(c.upper() if self.rng.random() < 0.5 else c for c in address)
        return "0x" + address

    def _email(self) -> str:
        local = self._choice(NAMES).lower() + self._choice((".", "_", "")) + self._digits(1, 999)
        return f"{local}@{self._choice(DOMAINS)}"

    def _uuid(self) -> str:
        h = self._hex(32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _phone(self) -> str:
        country = self._choice(("49", "34", "33", "44"))
        return f"+{country} {self._digits(100, 999)} {self._digits(1_000_000, 9_999_999)}"

    def _version(self) -> str:
        rng = self.rng
        return f"{rng.randint(4, 6)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"

    def _makers(self) -> dict[str, Callable[[], str]]:
        rng = self.rng
        return {
            "btc_tx": lambda: self._hex(64),
            "evm_tx": lambda: "0x" + self._hex(64),
            "evm_url": lambda: f"https://etherscan.io/tx/0x{self._hex(64)}",
            "btc_addr": self._btc_address,
            "evm_addr": self._evm_address,
            "trx_addr": lambda: self._base58("T", 33),
            "btc_amount": lambda: self._amount("BTC", 0.001, 3, rng.choice((3, 4, 8))),
            "eth_amount": lambda: self._amount("ETH", 0.01, 20, rng.choice((2, 4))),
            "usdt_amount": lambda: self._amount("USDT", 20, 50_000, rng.choice((0, 2))),
            "usdc_amount": lambda: self._amount("USDC", 20, 50_000, rng.choice((0, 2))),
            "xrp_amount": lambda: self._amount("XRP", 10, 20_000, 0),
            "eur_amount": lambda: self._amount("EUR", 5, 9_000, 2),
            "mxn_amount": lambda: self._amount("MXN", 100, 90_000, 2),
            **dict.fromkeys(
                ("hours", "days", "n", "minutes", "confs"), lambda: self._digits(2, 96)
            ),
            "percent": lambda: self._digits(2, 99),
            "time": self._time,
            "date": self._date,
            "month": lambda: self._choice(MONTHS),
            "ticket": lambda: self._choice(("ZD-", "#", "SUP-")) + self._digits(1000, 999_999),
            "order": lambda: self._choice(("#", "no. ", "")) + self._digits(100_000, 99_999_999),
            **dict.fromkeys(("account", "ref"), lambda: self._digits(10_000_000, 99_999_999)),
            "last4": lambda: self._digits(1000, 9999),
            "email": self._email,
            "help_url": lambda: f"https://help.example.com/requests/{self._digits(1000, 99999)}",
            "uuid": self._uuid,
            "phone": self._phone,
            "version": self._version,
            "android": lambda: str(rng.randint(11, 15)),
            "merchant": lambda: self._choice(MERCHANTS),
            "browser": lambda: self._choice(BROWSERS),
            "device": lambda: self._choice(DEVICES),
            "filetype": lambda: self._choice(FILETYPES),
            "name": lambda: self._choice(NAMES),
            "thing": lambda: self._choice(ONE_OFF_THINGS),
            **{name: partial(self._choice, values) for name, values in ONE_OFF_SLOTS.items()},
        }

    def value(self, name: str) -> str:
        """A fresh value for slot `name`."""
        return self._make[name]()

    def fill(self, template: str) -> str:
        """`template` with each slot a fresh value (the same slot twice: two values)."""
        parts = []
        for literal, field, _, _ in string.Formatter().parse(template):
            parts.append(literal)
            if field is not None:
                parts.append(self.value(field))
        return "".join(parts)


def _typo(word: str, rng: random.Random) -> str:
    """One typing slip: two letters swapped, one dropped, doubled or a neighbouring key."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    near = _TYPO_NEIGHBOURS.get(word[i].lower())
    return word[:i] + (rng.choice(near) if near else word[i]) + word[i + 1 :]


def _with_typos(template: str, rng: random.Random, count: int) -> str:
    """Typos in the words of a template (never in a slot: customers paste hashes)."""
    words = template.split(" ")
    eligible = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 4]
    for i in rng.sample(eligible, min(count, len(eligible))):
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def _style(text: str, rng: random.Random) -> str:
    """How the text is typed: as written, all lower case, or with shouting."""
    roll = rng.random()
    if roll < 0.2:
        return text.lower()
    if roll < 0.25:
        return text.upper()
    return text


def _report(problem: Problem, rng: random.Random, at: datetime) -> str:
    if problem.rare and rng.random() < problem.rare_share:
        language, template = rng.choice(problem.rare)
    else:
        template = rng.choice(problem.phrasings)
        language = problem.language
    return _dress(template, language, rng, at)


def _dress(template: str, language: str, rng: random.Random, at: datetime) -> str:
    """A template as one customer or agent wrote it: typos, extras, greeting, sign-off."""
    slots = _Slots(rng, at)
    if rng.random() < 0.35:
        template = _with_typos(template, rng, rng.choice((1, 1, 2, 3)))
    parts = [slots.fill(template)]
    if rng.random() < 0.3:
        parts.append(slots.fill(rng.choice(EXTRAS[language])))
    if rng.random() < 0.4:
        parts.insert(0, rng.choice(GREETINGS[language]))
    if rng.random() < 0.3:
        parts.append(slots.fill(rng.choice(SIGN_OFFS[language])))
    return _style(" ".join(parts), rng)


# --- One-offs -------------------------------------------------------------------------------

ONE_OFF_OPENERS = (
    "Quick question:",
    "Customer asks",
    "I would like to know",
    "Can you tell me",
    "Please advise:",
    "Question from a customer:",
    "Hello, I need help with this:",
    "",
)
# One-off questions: a frame (function words only) around a verb and a thing, and often a
# detail, so that thousands of one-offs can all differ; two of them share a word or two
# (a verb, "card"), rarely half their words.
ONE_OFF_FRAMES = (
    "how do I {verb} {thing}?",
    "can I {verb} {thing}?",
    "is it possible to {verb} {thing}?",
    "I want to {verb} {thing}.",
    "what do I need to {verb} {thing}?",
    "where can I {verb} {thing}?",
    "why can't I {verb} {thing}?",
    "who can {verb} {thing}?",
    "when can I {verb} {thing}?",
    "is there a way to {verb} {thing}?",
    "could you {verb} {thing} for me?",
    "how long does it take to {verb} {thing}?",
    "does it cost anything to {verb} {thing}?",
    "I would like to {verb} {thing}, is that possible?",
)
ONE_OFF_VERBS = (
    "change", "cancel", "export", "share", "close", "transfer", "rename", "freeze", "unlock",
    "download", "print", "delete", "upgrade", "downgrade", "pause", "resume", "link", "unlink",
    "dispute", "convert", "schedule", "reset", "restore", "archive", "renew", "extend",
    "replace", "activate", "deactivate", "order", "return", "gift", "insure", "audit", "hide",
    "translate", "merge", "sign", "move", "backdate",
)  # fmt: skip
ONE_OFF_THINGS = (
    "the tax report", "price alerts", "the savings plan", "dark mode", "the referral programme",
    "the metal card", "a second IBAN", "the API key", "the trade history export",
    "recurring buys", "the desktop app", "the portfolio chart", "a joint account",
    "the travel insurance", "card cashback", "the virtual card", "Apple Pay", "Google Pay",
    "sub-accounts", "the dividend calendar", "order notifications", "the newsletter",
    "the privacy settings", "the login history", "the device list", "spending analytics",
    "round-ups", "the business plan", "the student discount", "the loyalty tier",
    "PDF invoices", "the address book", "the beneficiary list", "instant transfers",
    "the overdraft", "the budget planner", "chart indicators", "the watchlist",
    "the phone number", "my display name", "the account nickname", "the profile photo",
    "the card PIN", "contactless payments", "ATM withdrawals abroad", "the spending limit",
    "the savings goal", "interest on balances", "the annual statement", "the fee schedule",
    "the certificate of balance", "the power of attorney", "the inheritance process",
    "the premium subscription", "the family plan", "child accounts", "gift cards",
    "the recovery phrase backup", "the whitelist for addresses", "the trading view",
    "tokenized stocks", "the ETF savings plan", "fractional shares", "the margin account",
    "the demo account", "the language of the app", "push notifications", "the widget",
    "the smartwatch app", "the browser extension", "the terms and conditions",
    "the GDPR data export", "marketing e-mails", "the feedback form", "the support chat",
    "the community forum", "the status page", "the affiliate dashboard",
    "the corporate card", "expense receipts", "the accounting integration",
    "the payroll feature", "cash deposits", "cheque deposits", "the QR code payments",
    "split bills", "the shared wallet", "the vault", "the stablecoin rewards",
    "the learning rewards", "the quiz rewards", "airdrops", "the token listing requests",
    "the OTC desk", "the custody report", "the proof of reserves", "the insurance fund",
)  # fmt: skip
ONE_OFF_SLOTS = {
    "country": ("Portugal", "Poland", "Mexico", "Canada", "Chile", "Greece", "Norway", "Japan"),
    "attribute": ("date", "currency", "amount", "language", "name", "time zone", "fee"),
    "partner": ("TurboTax", "Excel", "Google Sheets", "MetaMask", "Ledger", "Wise", "Xero"),
    "relative": ("mother", "son", "husband", "wife", "grandfather", "daughter"),
    "language": ("Dutch", "Italian", "Turkish", "Czech", "Romanian", "Greek"),
    "verb": ONE_OFF_VERBS,
    "asks": (
        "asked for it",
        "needs it by {date}",
        "says it is required",
        "could not explain it",
        "sent me to you",
        "wants it in writing",
    ),
}
ONE_OFF_DETAILS = (
    "my {relative} {asks}.",
    "my accountant {asks}.",
    "my bank in {country} {asks}.",
    "the notary {asks}.",
    "my employer {asks}.",
    "the tax office in {country} {asks}.",
    "I moved to {country} in {month}.",
    "I use the app on a {device}.",
    "since version {version}.",
    "I asked in the chat on {date} but got no answer.",
)
ONE_OFF_ENDS = (
    "",
    "Thanks.",
    "It's not urgent.",
    "Customer is waiting on the phone.",
    "Ticket {ticket}.",
    "Could not find it in the help center.",
)
ONE_OFF_KEYS = (
    ("account", "balance"),
    ("account", "statements"),
    ("account", "profile"),
    ("cards", "payments"),
    ("auth", "2fa"),
    ("trading", "orders"),
    ("withdrawals", "crypto"),
    ("deposits", "fiat"),
    ("mobile", "ios"),
    ("mobile", "android"),
    ("general", "question"),
    ("general", "question"),
    ("general", "question"),
)


# Syllables of made-up words: the long tail of a large volume's vocabulary (names of
# features, places, products), which the grammar above lacks. See `generate(long_tail=...)`.
_SYLLABLES = (
    "ka", "lo", "mi", "ra", "ven", "tor", "sul", "pe", "dri", "mon", "zu", "fel",
    "gan", "bri", "sto", "qua", "nel", "vor", "ti", "lex", "dun", "har", "pim", "ros",
)  # fmt: skip


def _rare(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()


def _one_off(rng: random.Random, at: datetime, long_tail: bool) -> tuple[str, str, str]:
    slots = _Slots(rng, at)
    question = slots.fill(rng.choice(ONE_OFF_FRAMES))
    if long_tail:
        question += f" It is about {_rare(rng)} and {_rare(rng)}."
    parts = [
        rng.choice(ONE_OFF_OPENERS) if rng.random() < 0.2 else "",
        question,
        slots.fill(slots.fill(rng.choice(ONE_OFF_DETAILS))) if rng.random() < 0.5 else "",
        slots.fill(rng.choice(ONE_OFF_ENDS)) if rng.random() < 0.15 else "",
    ]
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.35:
        text = _with_typos(text, rng, rng.choice((1, 2)))
    category, component = rng.choice(ONE_OFF_KEYS)
    return _style(text, rng), category, component


# --- The corpus -----------------------------------------------------------------------------

REGIONS = ("eu", "us", "uk", "latam", "apac", "mena", "ch", "nordics", "ca", "au", "za", "in")


def problems(replicas: int = 1) -> tuple[Problem, ...]:
    """The problems; with `replicas` > 1, regional copies (component suffixed, own label)."""
    if replicas <= 1:
        return PROBLEMS
    copies = []
    for n in range(replicas):
        region = REGIONS[n % len(REGIONS)] + (str(n // len(REGIONS)) if n >= len(REGIONS) else "")
        for problem in PROBLEMS:
            copies.append(
                Problem(
                    f"{problem.label}@{region}",
                    problem.category,
                    f"{problem.component} {region}",
                    problem.weight,
                    problem.phrasings,
                    problem.rare,
                    problem.rare_share,
                    problem.language,
                    problem.chronic,
                )
            )
    return tuple(copies)


def _active(
    problem: Problem, rng: random.Random, start: datetime, span: timedelta
) -> tuple[datetime, timedelta]:
    """When a problem is reported: the whole span, or a burst of 6 hours to 4 days."""
    if problem.chronic:
        return start, span
    length = min(span, timedelta(hours=rng.uniform(6, 96)))
    offset = rng.uniform(0, (span - length).total_seconds())
    return start + timedelta(seconds=offset), length


def generate(
    seed: int = 1,
    cases: int = 4000,
    *,
    one_offs: float = 0.1,
    start: datetime = START,
    span: timedelta = timedelta(days=21),
    replicas: int = 1,
    long_tail: bool = False,
) -> list[Escalation]:
    """`cases` escalations in time order: `one_offs` of them unrelated, the rest reports of
    the problems in proportion to their weights. `long_tail`: each one-off also names two
    made-up words, for volumes where the grammar's own words would make thousands of
    one-offs share too many of them (real questions name specific things)."""
    rng = random.Random(seed)
    chosen = problems(replicas)
    windows = [_active(p, rng, start, span) for p in chosen]
    weights = [p.weight for p in chosen]
    found: list[Escalation] = []
    singles = round(cases * one_offs)
    for problem_index in rng.choices(range(len(chosen)), weights=weights, k=cases - singles):
        problem = chosen[problem_index]
        begin, length = windows[problem_index]
        at = begin + timedelta(seconds=rng.uniform(0, length.total_seconds()))
        found.append(
            Escalation(
                _report(problem, rng, at),
                problem.category,
                problem.component,
                f"cust-{rng.randrange(10 * cases)}",
                at,
                problem.label,
            )
        )
    for index in range(singles):
        at = start + timedelta(seconds=rng.uniform(0, span.total_seconds()))
        text, category, component = _one_off(rng, at, long_tail)
        found.append(
            Escalation(
                text,
                category,
                component,
                f"cust-{rng.randrange(10 * cases)}",
                at,
                f"one-off-{index}",
            )
        )
    found.sort(key=lambda e: (e.at, e.label, e.text))
    return found


def pairwise(clusters: Sequence[int], labels: Sequence[str]) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering against the labels: of the pairs of
    escalations put in one cluster, the share with one label; of the pairs with one label,
    the share put in one cluster. (Stricter than B-cubed: a problem split in two halves
    loses half its pairs, and one wrong merge of two big problems costs thousands.)"""

    def pairs(counts: Iterable[int]) -> int:
        return sum(n * (n - 1) // 2 for n in counts)

    both = pairs(Counter(zip(clusters, labels, strict=True)).values())
    clustered, labelled = pairs(Counter(clusters).values()), pairs(Counter(labels).values())
    return (both / clustered if clustered else 1.0), (both / labelled if labelled else 1.0)
