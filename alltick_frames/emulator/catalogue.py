"""The emulator's synthetic product list: about 600 codes across every asset class.

AllTick's real product list is a Google Sheet with no API; the emulator ships its own. It holds
every code named in ``alltick-api.md``, every symbol of the Free plan, and enough of each asset
class to exercise chunking and routing for real:

=========  ========  =====================================================  ===============
class      path      examples                                               market
=========  ========  =====================================================  ===============
stock      stock     ``AAPL.US``, ``BRK.B.US``, ``700.HK``, ``600416.SH``   US, HK, SH, SZ
index      stock     ``HSI.HK``, ``DJI.US``, ``000001.SH``, ``399001.SZ``   US, HK, SH, SZ
fx         forex     ``EURUSD``, ``USDJPY``, ``USDCNH``                      none
crypto     forex     ``BTCUSDT``, ``ETHUSDT``, ``SHIBUSDT``                  none
metal      forex     ``GOLD``, ``Silver``, ``Platinum``, ``XAUUSD``          none
energy     forex     ``USOIL``, ``UKOIL``, ``NGAS``                           none
cfd        forex     ``US30``, ``GER40``, ``HK50`` (CFD indices)             none
etf        stock     ``SPY.US``, ``2800.HK``, ``510300.SH``, ``159915.SZ``   US, HK, SH, SZ
=========  ========  =====================================================  ===============

Every code AllTick's docs use as an example is here (the pages under ``en/product-codes/`` and
``en/getting-started/product-codes.mdx``), spelt as the code tables spell them: ``Silver``, not
the ``SILVER`` of the getting-started page, since codes are case-sensitive and the tables are
the product list's own excerpts.

**Order books at the limits.** A few A-shares sit at their daily limit every day, and a few
stocks are delisted (``book_status``, also in ``GET /_emulator/codes``); their books are
zero-filled as ``en/api-reference/stock/price-change-trading-status.mdx`` describes (see
:func:`~alltick_frames.emulator.market.order_book`). US and HK stocks have no daily price
limits, so only A-shares go limit-up or limit-down. A delisted code stopped trading at
:data:`DELISTED_AT`: it is still in the product list (AllTick removes delisted codes from its
list "regularly", so for a while they still answer), its bars and its last trade are those
of its last session, and from then on both sides of its book are zero.

After the named codes come generated ones (:func:`_generated`): US tickers ``QAA.US`` to
``QDZ.US``, Hong Kong ``8001.HK`` to ``8040.HK`` and Shenzhen ``301001.SZ`` to ``301040.SZ``,
so that jobs of well over 450 codes (batch refreshes filling several calls) can be exercised.
They come last and their price paths depend on their own codes only, so every named code and
its data stay exactly as they were.

Names and reference prices are illustrative (roughly mid-2024 levels); they only make the
synthetic market look plausible. Market indices carry their market's suffix (``HSI.HK``), the
spelling this project chose because AllTick's own index spellings are not published offline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from alltick_frames.core.codes import FOREX_PATH, STOCK_PATH, classify

STOCK, INDEX, ETF, FX, CRYPTO, METAL, ENERGY, CFD = (
    "stock",
    "index",
    "etf",
    "fx",
    "crypto",
    "metal",
    "energy",
    "cfd",
)
#: Classes whose history pages back with ``kline_timestamp_end``: "only forex, precious
#: metals, and cryptocurrencies support timestamp input" (``en/api-reference/stock/kline.mdx``).
PAGEABLE = frozenset({FX, CRYPTO, METAL})

#: Book statuses (``en/api-reference/stock/price-change-trading-status.mdx``).
NORMAL, LIMIT_UP, LIMIT_DOWN, DELISTED = "normal", "limit-up", "limit-down", "delisted"
_BOOK_STATUS = {
    "600196.SH": LIMIT_UP,
    "002049.SZ": LIMIT_UP,
    "600011.SH": LIMIT_DOWN,
    "002466.SZ": LIMIT_DOWN,
    "QDZ.US": DELISTED,
    "8040.HK": DELISTED,
    "301040.SZ": DELISTED,
}
#: When the delisted codes stopped trading: 2024-03-29 00:00 UTC (after every market's
#: Thursday session; before it they trade like any other code).
DELISTED_AT = 1_711_670_400

#: Order-book levels per asset class and market (alltick-api.md §3.4); indices have no book.
_DEPTH_LEVELS = {"US": 1, "HK": 10, "SH": 5, "SZ": 5, CRYPTO: 5, FX: 1, METAL: 1, ENERGY: 1, CFD: 1}


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same in every process (unlike ``hash()``)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One code of the synthetic market and the parameters of its price path."""

    code: str
    name: str
    asset_class: str
    #: ``US``, ``HK``, ``SH`` or ``SZ`` for stocks and indices; ``None`` on the forex path.
    market: str | None
    #: The level the price path wanders around.
    base_price: float
    decimals: int
    #: Annualised volatility of the price path.
    vol: float
    currency: str
    exchange: str
    name_cn: str = ""
    lot_size: int = 1
    #: Units traded on an average full trading day (0: the class reports no volume).
    daily_volume: float = 0.0
    #: ``normal``, ``limit-up``, ``limit-down`` or ``delisted`` (the catalogue assigns it).
    book_status: str = NORMAL
    seed: int = field(default=0, compare=False)

    @property
    def path(self) -> str:
        return STOCK_PATH if self.market is not None else FOREX_PATH

    @property
    def is_stock_path(self) -> bool:
        return self.market is not None

    @property
    def pageable(self) -> bool:
        """Whether ``kline_timestamp_end`` pages this code back (see :data:`PAGEABLE`)."""
        return self.asset_class in PAGEABLE

    @property
    def depth_levels(self) -> int:
        if self.asset_class == INDEX:
            return 0
        return _DEPTH_LEVELS[self.market or self.asset_class]

    @property
    def schedule_key(self) -> str:
        """Which trading calendar applies: ``US``, ``HK``, ``CN``, ``FX`` or ``CRYPTO``."""
        if self.market in ("SH", "SZ"):
            return "CN"
        if self.market is not None:
            return self.market
        return "CRYPTO" if self.asset_class == CRYPTO else "FX"

    def to_json(self) -> dict[str, object]:
        """The row ``GET /_emulator/codes`` reports for this code."""
        return {
            "code": self.code,
            "name": self.name,
            "asset_class": self.asset_class,
            "market": self.market,
            "path": self.path,
            "exchange": self.exchange,
            "currency": self.currency,
            "pageable": self.pageable,
            "depth_levels": self.depth_levels,
            "book_status": self.book_status,
        }


# --- the raw lists -------------------------------------------------------------------------
# Items are "|"-separated fields, items are separated by whitespace (names contain spaces, so
# the regexes below find the items). US: ticker|name|exchange|price; HK, SH, SZ: number|name|
# price|Chinese name.

_US = """
AAPL|Apple Inc.|NASDAQ|180  MSFT|Microsoft Corp.|NASDAQ|410
GOOGL|Alphabet Inc. Class A|NASDAQ|160  GOOG|Alphabet Inc. Class C|NASDAQ|162
AMZN|Amazon.com Inc.|NASDAQ|180  NVDA|NVIDIA Corp.|NASDAQ|900
META|Meta Platforms Inc.|NASDAQ|480  TSLA|Tesla Inc.|NASDAQ|180  AVGO|Broadcom Inc.|NASDAQ|1300
COST|Costco Wholesale|NASDAQ|780  NFLX|Netflix Inc.|NASDAQ|610
AMD|Advanced Micro Devices|NASDAQ|160  ADBE|Adobe Inc.|NASDAQ|480  PEP|PepsiCo Inc.|NASDAQ|175
CSCO|Cisco Systems|NASDAQ|48  INTC|Intel Corp.|NASDAQ|31  CMCSA|Comcast Corp.|NASDAQ|39
TXN|Texas Instruments|NASDAQ|190  QCOM|Qualcomm Inc.|NASDAQ|190  INTU|Intuit Inc.|NASDAQ|640
AMGN|Amgen Inc.|NASDAQ|300  HON|Honeywell International|NASDAQ|200
AMAT|Applied Materials|NASDAQ|210  SBUX|Starbucks|NASDAQ|78  BKNG|Booking Holdings|NASDAQ|3600
ISRG|Intuitive Surgical|NASDAQ|390  MDLZ|Mondelez|NASDAQ|70  GILD|Gilead Sciences|NASDAQ|66
ADI|Analog Devices|NASDAQ|200  VRTX|Vertex Pharmaceuticals|NASDAQ|420  REGN|Regeneron|NASDAQ|950
LRCX|Lam Research|NASDAQ|900  PYPL|PayPal Holdings|NASDAQ|64  MU|Micron Technology|NASDAQ|125
PANW|Palo Alto Networks|NASDAQ|300  SNPS|Synopsys|NASDAQ|550  KLAC|KLA Corp.|NASDAQ|700
CDNS|Cadence Design Systems|NASDAQ|290  MRVL|Marvell Technology|NASDAQ|70
ASML|ASML Holding ADR|NASDAQ|950  PDD|PDD Holdings ADR|NASDAQ|140  JD|JD.com ADR|NASDAQ|35
BIDU|Baidu ADR|NASDAQ|105  NTES|NetEase ADR|NASDAQ|95  BILI|Bilibili ADR|NASDAQ|14
ABNB|Airbnb Inc.|NASDAQ|150  MELI|MercadoLibre|NASDAQ|1700  CRWD|CrowdStrike|NASDAQ|330
DDOG|Datadog Inc.|NASDAQ|125  ZM|Zoom Video|NASDAQ|62  TEAM|Atlassian|NASDAQ|175
WDAY|Workday Inc.|NASDAQ|250  MRNA|Moderna Inc.|NASDAQ|110  ORLY|O'Reilly Automotive|NASDAQ|1000
CTAS|Cintas Corp.|NASDAQ|680  MAR|Marriott International|NASDAQ|240  LULU|Lululemon|NASDAQ|330
ROST|Ross Stores|NASDAQ|140  EA|Electronic Arts|NASDAQ|130  MNST|Monster Beverage|NASDAQ|55
KDP|Keurig Dr Pepper|NASDAQ|34  DXCM|DexCom Inc.|NASDAQ|130  IDXX|IDEXX Laboratories|NASDAQ|500
FTNT|Fortinet Inc.|NASDAQ|62  CSX|CSX Corp.|NASDAQ|34  ODFL|Old Dominion Freight|NASDAQ|180
PAYX|Paychex Inc.|NASDAQ|120  FAST|Fastenal Co.|NASDAQ|68  CPRT|Copart Inc.|NASDAQ|54
VRSK|Verisk Analytics|NASDAQ|240  CHTR|Charter Communications|NASDAQ|330
TMUS|T-Mobile US|NASDAQ|165  AZN|AstraZeneca ADR|NASDAQ|76  LI|Li Auto ADR|NASDAQ|25
PLTR|Palantir Technologies|NASDAQ|22  UNH|UnitedHealth Group|NYSE|500
JPM|JPMorgan Chase|NYSE|195  V|Visa Inc.|NYSE|275  MA|Mastercard Inc.|NYSE|455
JNJ|Johnson & Johnson|NYSE|150  WMT|Walmart Inc.|NYSE|60  PG|Procter & Gamble|NYSE|165
XOM|Exxon Mobil|NYSE|118  CVX|Chevron Corp.|NYSE|160  HD|Home Depot|NYSE|345
KO|Coca-Cola Co.|NYSE|62  MRK|Merck & Co.|NYSE|128  ABBV|AbbVie Inc.|NYSE|165
BAC|Bank of America|NYSE|38  PFE|Pfizer Inc.|NYSE|28  TMO|Thermo Fisher Scientific|NYSE|570
DIS|Walt Disney Co.|NYSE|105  CRM|Salesforce Inc.|NYSE|290  ORCL|Oracle Corp.|NYSE|125
ACN|Accenture|NYSE|310  MCD|McDonald's Corp.|NYSE|270  LLY|Eli Lilly and Co.|NYSE|780
NKE|Nike Inc.|NYSE|92  WFC|Wells Fargo|NYSE|60  IBM|IBM Corp.|NYSE|170  GE|GE Aerospace|NYSE|160
CAT|Caterpillar Inc.|NYSE|350  BA|Boeing Co.|NYSE|180  GS|Goldman Sachs|NYSE|450
MS|Morgan Stanley|NYSE|95  BLK|BlackRock Inc.|NYSE|780  AXP|American Express|NYSE|230
C|Citigroup Inc.|NYSE|62  T|AT&T Inc.|NYSE|17  VZ|Verizon Communications|NYSE|40
UPS|United Parcel Service|NYSE|145  LMT|Lockheed Martin|NYSE|460  RTX|RTX Corp.|NYSE|100
DE|Deere & Co.|NYSE|390  SPGI|S&P Global|NYSE|430  NEE|NextEra Energy|NYSE|70
PM|Philip Morris|NYSE|95  SO|Southern Co.|NYSE|75  DUK|Duke Energy|NYSE|98  MMM|3M Co.|NYSE|95
BABA|Alibaba Group ADR|NYSE|80  TSM|Taiwan Semiconductor ADR|NYSE|150  SHOP|Shopify Inc.|NYSE|70
UBER|Uber Technologies|NYSE|70  SNOW|Snowflake Inc.|NYSE|155  NIO|NIO Inc. ADR|NYSE|5
XPEV|XPeng Inc. ADR|NYSE|8  BRK.B|Berkshire Hathaway Class B|NYSE|410  F|Ford Motor Co.|NYSE|12
GM|General Motors|NYSE|45  NOW|ServiceNow Inc.|NYSE|720  ABT|Abbott Laboratories|NYSE|105
DHR|Danaher Corp.|NYSE|250  LOW|Lowe's Companies|NYSE|225  UNP|Union Pacific|NYSE|240
SCHW|Charles Schwab|NYSE|72  COP|ConocoPhillips|NYSE|120  ELV|Elevance Health|NYSE|520
CVS|CVS Health|NYSE|60  BMY|Bristol-Myers Squibb|NYSE|42  MDT|Medtronic plc|NYSE|82
SYK|Stryker Corp.|NYSE|340  TGT|Target Corp.|NYSE|160  USB|U.S. Bancorp|NYSE|40
PNC|PNC Financial|NYSE|155
"""

_HK = """
700|Tencent Holdings|370|腾讯控股  9988|Alibaba Group|80|阿里巴巴  3690|Meituan|115|美团
1810|Xiaomi Corp.|18|小米集团  9618|JD.com|130|京东集团  1024|Kuaishou Technology|55|快手
9888|Baidu Inc.|105|百度集团  9999|NetEase Inc.|145|网易  2318|Ping An Insurance|38|中国平安
1299|AIA Group|60|友邦保险  5|HSBC Holdings|68|汇丰控股  388|Hong Kong Exchanges|260|香港交易所
939|China Construction Bank|5.3|建设银行  1398|ICBC|4.3|工商银行
3988|Bank of China|3.5|中国银行  1288|Agricultural Bank of China|3.6|农业银行
857|PetroChina|7.5|中国石油股份  883|CNOOC|19|中国海洋石油
386|Sinopec Corp.|4.9|中国石油化工股份  941|China Mobile|70|中国移动
762|China Unicom|9|中国联通  728|China Telecom|4.3|中国电信  1|CK Hutchison|39|长和
2|CLP Holdings|64|中电控股  3|HK and China Gas|6|香港中华煤气  6|Power Assets|45|电能实业
11|Hang Seng Bank|105|恒生银行  12|Henderson Land|24|恒基地产
16|Sun Hung Kai Properties|80|新鸿基地产  17|New World Development|9|新世界发展
27|Galaxy Entertainment|38|银河娱乐  66|MTR Corp.|27|港铁公司
101|Hang Lung Properties|8|恒隆地产  175|Geely Automobile|9.5|吉利汽车
267|CITIC Ltd.|8|中信股份  288|WH Group|5.8|万洲国际  291|China Resources Beer|35|华润啤酒
316|Orient Overseas|120|东方海外国际  669|Techtronic Industries|100|创科实业
688|China Overseas Land|14|中国海外发展  823|Link REIT|35|领展房产基金
868|Xinyi Glass|8.5|信义玻璃  881|Zhongsheng Group|14|中升控股  960|Longfor Group|12|龙湖集团
968|Xinyi Solar|4.5|信义光能  981|SMIC|17|中芯国际  1038|CK Infrastructure|48|长江基建集团
1044|Hengan International|25|恒安国际  1093|CSPC Pharmaceutical|7|石药集团
1109|China Resources Land|28|华润置地  1113|CK Asset|33|长实集团
1177|Sino Biopharmaceutical|3|中国生物制药  1211|BYD Co.|230|比亚迪股份
1378|China Hongqiao|12|中国宏桥  1876|Budweiser APAC|11|百威亚太  1928|Sands China|19|金沙中国
1997|Wharf REIC|26|九龙仓置业  2020|ANTA Sports|90|安踏体育  2269|WuXi Biologics|14|药明生物
2313|Shenzhou International|75|申洲国际  2319|China Mengniu Dairy|16|蒙牛乳业
2331|Li Ning|20|李宁  2382|Sunny Optical|45|舜宇光学科技  2388|BOC Hong Kong|24|中银香港
2628|China Life|12|中国人寿  2688|ENN Energy|65|新奥能源  3968|China Merchants Bank|35|招商银行
6098|Country Garden Services|6|碧桂园服务  6618|JD Health|27|京东健康  6862|Haidilao|17|海底捞
9633|Nongfu Spring|45|农夫山泉  9868|XPeng Inc.|33|小鹏汽车  9961|Trip.com Group|400|携程集团
2015|Li Auto|85|理想汽车  9866|NIO Inc.|38|蔚来  1347|Hua Hong Semiconductor|20|华虹半导体
2899|Zijin Mining|17|紫金矿业  3328|Bank of Communications|5.6|交通银行
2601|China Pacific Insurance|23|中国太保  1919|COSCO Shipping|13|中远海控
6690|Haier Smart Home|28|海尔智家  2333|Great Wall Motor|12|长城汽车
1088|China Shenhua|33|中国神华
"""

_SH = """
600519|Kweichow Moutai|1700|贵州茅台  601318|Ping An Insurance|45|中国平安
600036|China Merchants Bank|33|招商银行  601398|ICBC|5.6|工商银行
601288|Agricultural Bank of China|4.2|农业银行  601988|Bank of China|4.5|中国银行
601939|China Construction Bank|7|建设银行  600028|Sinopec Corp.|6|中国石化
601857|PetroChina|9.5|中国石油  600900|China Yangtze Power|27|长江电力
600276|Jiangsu Hengrui Pharma|45|恒瑞医药  600030|CITIC Securities|21|中信证券
601166|Industrial Bank|17|兴业银行  600000|Shanghai Pudong Dev. Bank|7.5|浦发银行
600016|China Minsheng Bank|3.9|民生银行  601328|Bank of Communications|6.8|交通银行
600887|Inner Mongolia Yili|28|伊利股份  601012|LONGi Green Energy|20|隆基绿能
600309|Wanhua Chemical|85|万华化学  601899|Zijin Mining|17|紫金矿业
600048|Poly Developments|9|保利发展  601888|China Tourism Duty Free|75|中国中免
600104|SAIC Motor|15|上汽集团  601628|China Life|35|中国人寿
601601|China Pacific Insurance|28|中国太保  600585|Anhui Conch Cement|24|海螺水泥
601088|China Shenhua|40|中国神华  600050|China Unicom|4.7|中国联通
601668|China State Construction|5.8|中国建筑  601390|China Railway Group|6.5|中国中铁
600031|Sany Heavy Industry|16|三一重工  601919|COSCO Shipping|14|中远海控
600809|Shanxi Fenjiu|230|山西汾酒  600690|Haier Smart Home|30|海尔智家
601633|Great Wall Motor|25|长城汽车  600438|Tongwei|22|通威股份
603288|Foshan Haitian|40|海天味业  600406|NARI Technology|24|国电南瑞
601138|Foxconn Industrial Internet|25|工业富联  688981|SMIC|45|中芯国际
688111|Kingsoft Office|260|金山办公  688599|Trina Solar|22|天合光能
600588|Yonyou Network|11|用友网络  600893|AECC Aviation Power|35|航发动力
601766|CRRC Corp.|7|中国中车  600745|Wingtech Technology|33|闻泰科技
600436|Zhangzhou Pien Tze Huang|230|片仔癀  601111|Air China|7|中国国航
600115|China Eastern Airlines|4|东方航空  600029|China Southern Airlines|5.8|南方航空
600018|Shanghai Intl. Port|5.5|上港集团  601006|Daqin Railway|7|大秦铁路
600416|Xiangtan Electric Mfg.|14|湘电股份  600150|China CSSC Holdings|35|中国船舶
600196|Fosun Pharma|25|复星医药  600011|Huaneng Power|9|华能国际
600206|Grinm Advanced Materials|12|有研新材  600076|Kangxin New Materials|2.5|康欣新材
600152|Veken Technology|6|维科技术
"""

_SZ = """
000001|Ping An Bank|10.5|平安银行  000002|China Vanke|7|万科A  000333|Midea Group|68|美的集团
000651|Gree Electric|40|格力电器  000858|Wuliangye Yibin|150|五粮液
000568|Luzhou Laojiao|180|泸州老窖  000725|BOE Technology|4.2|京东方A
000063|ZTE Corp.|28|中兴通讯  000100|TCL Technology|4.5|TCL科技
000538|Yunnan Baiyao|55|云南白药  000625|Changan Automobile|14|长安汽车
000627|Tianmao Group|3|天茂集团  000768|AVIC Xi'an Aircraft|22|中航西飞
000776|GF Securities|13|广发证券  000895|Henan Shuanghui|28|双汇发展
000938|Unisplendour|22|紫光股份  000977|Inspur Information|38|浪潮信息
001979|China Merchants Shekou|10|招商蛇口  002027|Focus Media|6.8|分众传媒
002142|Bank of Ningbo|24|宁波银行  002230|iFlytek|45|科大讯飞  002241|Goertek|18|歌尔股份
002304|Jiangsu Yanghe|100|洋河股份  002352|SF Holding|38|顺丰控股  002415|Hikvision|32|海康威视
002460|Ganfeng Lithium|32|赣锋锂业  002475|Luxshare Precision|30|立讯精密
002594|BYD Co.|230|比亚迪  002714|Muyuan Foods|42|牧原股份
002812|Yunnan Energy New Material|35|恩捷股份  003816|CGN Power|4|中国广核
300014|EVE Energy|42|亿纬锂能  300015|Aier Eye Hospital|13|爱尔眼科
300059|East Money Information|13|东方财富  300122|Chongqing Zhifei|30|智飞生物
300124|Shenzhen Inovance|60|汇川技术  300274|Sungrow Power|90|阳光电源
300408|Chaozhou Three-Circle|25|三环集团  300413|Mango Excellent Media|25|芒果超媒
300433|Lens Technology|15|蓝思科技  300450|Wuxi Lead Intelligent|20|先导智能
300498|Wens Foodstuff|19|温氏股份  300750|CATL|190|宁德时代  300760|Mindray Medical|290|迈瑞医疗
300782|Maxscend Microelectronics|80|卓胜微  300896|Imeik Technology|230|爱美客
300999|Yihai Kerry Arawana|32|金龙鱼  002049|Unigroup Guoxin|65|紫光国微
002129|TCL Zhonghuan|12|TCL中环  002311|Guangdong Haid|50|海大集团
002371|NAURA Technology|320|北方华创  002466|Tianqi Lithium|40|天齐锂业
002493|Rongsheng Petrochemical|11|荣盛石化  000408|Zangge Mining|28|藏格矿业
000423|Dong-E-E-Jiao|60|东阿阿胶  002009|Miracle Automation|10|天奇股份
000690|Baoxin Energy|5|宝新能源  000415|Bohai Leasing|2.3|渤海租赁  002035|Vatti Corp.|7|华帝股份
000055|Fangda Group|4|方大集团
"""

#: Market indices on the stock path: code, name, reference level, Chinese name.
_INDICES = """
HSI.HK|Hang Seng Index|18000|恒生指数  HSTECH.HK|Hang Seng TECH Index|3800|恒生科技指数
HSCEI.HK|Hang Seng China Enterprises Index|6300|国企指数
DJI.US|Dow Jones Industrial Average|39000|道琼斯指数  SPX.US|S&P 500 Index|5200|标普500指数
IXIC.US|Nasdaq Composite Index|16000|纳斯达克综合指数
NDX.US|Nasdaq-100 Index|18000|纳斯达克100指数  000001.SH|SSE Composite Index|3100|上证指数
000300.SH|CSI 300 Index|3600|沪深300  000016.SH|SSE 50 Index|2500|上证50
000688.SH|SSE STAR 50 Index|800|科创50  399001.SZ|SZSE Component Index|9500|深证成指
399006.SZ|ChiNext Index|1850|创业板指  000905.SH|CSI 500 Index|5500|中证500
000852.SH|CSI 1000 Index|5800|中证1000
"""

#: Exchange-traded funds on the stock path: code, name, price, Chinese name.
_ETFS = """
SPY.US|SPDR S&P 500 ETF Trust|520|标普500ETF  QQQ.US|Invesco QQQ Trust|440|纳指100ETF
DIA.US|SPDR Dow Jones Industrial Average ETF|390|道指ETF
IWM.US|iShares Russell 2000 ETF|200|罗素2000ETF  GLD.US|SPDR Gold Shares|215|黄金ETF
2800.HK|Tracker Fund of Hong Kong|17|盈富基金
2828.HK|Hang Seng China Enterprises Index ETF|62|恒生中国企业
3033.HK|CSOP Hang Seng TECH Index ETF|3.6|南方恒生科技
510300.SH|Huatai-PineBridge CSI 300 ETF|3.6|沪深300ETF  510050.SH|ChinaAMC SSE 50 ETF|2.5|上证50ETF
588000.SH|ChinaAMC SSE STAR 50 ETF|0.9|科创50ETF  159919.SZ|Harvest CSI 300 ETF|3.7|沪深300ETF嘉实
159915.SZ|E Fund ChiNext ETF|1.9|创业板ETF
"""
_ETF_LOTS = {"2800.HK": 500, "2828.HK": 200, "3033.HK": 200}
#: Where the funds list: NYSE Arca for these, else their market's stock exchange.
_NYSE_ETFS = frozenset({"SPY.US", "DIA.US", "IWM.US", "GLD.US"})
_LISTING = {"US": "NASDAQ", "HK": "SEHK", "SH": "SSE", "SZ": "SZSE"}

#: Forex-path codes: code, class, reference price, decimals, annualised volatility, name.
_FOREX = """
EURUSD fx 1.08 5 .07 Euro/US Dollar|GBPUSD fx 1.26 5 .08 British Pound/US Dollar
USDJPY fx 150 3 .09 US Dollar/Japanese Yen|AUDUSD fx 0.66 5 .10 Australian Dollar/US Dollar
USDCAD fx 1.36 5 .06 US Dollar/Canadian Dollar|USDCHF fx 0.90 5 .07 US Dollar/Swiss Franc
NZDUSD fx 0.60 5 .10 New Zealand Dollar/US Dollar|EURJPY fx 165 3 .09 Euro/Japanese Yen
GBPJPY fx 195 3 .10 British Pound/Japanese Yen
AUDJPY fx 100 3 .12 Australian Dollar/Japanese Yen
CADJPY fx 110 3 .10 Canadian Dollar/Japanese Yen|CHFJPY fx 170 3 .09 Swiss Franc/Japanese Yen
NZDJPY fx 92 3 .12 New Zealand Dollar/Japanese Yen|EURGBP fx 0.86 5 .05 Euro/British Pound
EURCHF fx 0.97 5 .05 Euro/Swiss Franc|EURAUD fx 1.64 5 .08 Euro/Australian Dollar
EURCAD fx 1.47 5 .07 Euro/Canadian Dollar|EURNZD fx 1.78 5 .08 Euro/New Zealand Dollar
GBPAUD fx 1.91 5 .08 British Pound/Australian Dollar
GBPCAD fx 1.72 5 .07 British Pound/Canadian Dollar
GBPCHF fx 1.14 5 .07 British Pound/Swiss Franc|GBPNZD fx 2.07 5 .09 British Pound/NZ Dollar
AUDCAD fx 0.90 5 .08 Australian Dollar/Canadian Dollar
AUDCHF fx 0.60 5 .09 Australian Dollar/Swiss Franc
AUDNZD fx 1.09 5 .06 Australian Dollar/NZ Dollar
CADCHF fx 0.66 5 .08 Canadian Dollar/Swiss Franc|NZDCAD fx 0.83 5 .08 NZ Dollar/Canadian Dollar
NZDCHF fx 0.55 5 .09 NZ Dollar/Swiss Franc|USDCNH fx 7.2 4 .04 US Dollar/Offshore Yuan
USDHKD fx 7.8 4 .01 US Dollar/Hong Kong Dollar|USDSGD fx 1.35 5 .05 US Dollar/Singapore Dollar
USDSEK fx 10.7 4 .10 US Dollar/Swedish Krona|USDNOK fx 10.8 4 .11 US Dollar/Norwegian Krone
USDDKK fx 6.9 4 .07 US Dollar/Danish Krone|USDMXN fx 17 4 .12 US Dollar/Mexican Peso
USDZAR fx 18.5 4 .15 US Dollar/South African Rand|USDTRY fx 32 4 .20 US Dollar/Turkish Lira
USDPLN fx 4.0 4 .09 US Dollar/Polish Zloty|USDTHB fx 36 3 .07 US Dollar/Thai Baht
USDINR fx 83 3 .04 US Dollar/Indian Rupee|BTCUSDT crypto 62000 2 .60 Bitcoin/Tether
ETHUSDT crypto 3000 2 .70 Ethereum/Tether|BNBUSDT crypto 580 2 .65 BNB/Tether
SOLUSDT crypto 150 3 .90 Solana/Tether|XRPUSDT crypto 0.52 4 .75 XRP/Tether
ADAUSDT crypto 0.45 4 .80 Cardano/Tether|DOGEUSDT crypto 0.15 5 .95 Dogecoin/Tether
TRXUSDT crypto 0.12 5 .55 TRON/Tether|DOTUSDT crypto 7 3 .80 Polkadot/Tether
LINKUSDT crypto 15 3 .85 Chainlink/Tether|LTCUSDT crypto 82 2 .70 Litecoin/Tether
BCHUSDT crypto 450 2 .80 Bitcoin Cash/Tether|AVAXUSDT crypto 35 3 .90 Avalanche/Tether
MATICUSDT crypto 0.7 4 .90 Polygon/Tether|UNIUSDT crypto 8 3 .90 Uniswap/Tether
ATOMUSDT crypto 8.5 3 .80 Cosmos/Tether|XLMUSDT crypto 0.11 5 .70 Stellar/Tether
ETCUSDT crypto 27 3 .80 Ethereum Classic/Tether|FILUSDT crypto 6 3 .90 Filecoin/Tether
APTUSDT crypto 9 3 .95 Aptos/Tether|ARBUSDT crypto 1.1 4 .95 Arbitrum/Tether
OPUSDT crypto 2.5 4 .95 Optimism/Tether|NEARUSDT crypto 6.5 3 .95 NEAR Protocol/Tether
ICPUSDT crypto 13 3 .95 Internet Computer/Tether|SHIBUSDT crypto 0.000025 8 1.0 Shiba Inu/Tether
PEPEUSDT crypto 0.0000085 10 1.2 Pepe/Tether|TONUSDT crypto 6.5 4 .80 Toncoin/Tether
SUIUSDT crypto 1.0 4 1.0 Sui/Tether|AAVEUSDT crypto 90 2 .90 Aave/Tether
INJUSDT crypto 25 3 1.0 Injective/Tether|ALGOUSDT crypto 0.18 4 .90 Algorand/Tether
APEUSDT crypto 1.2 4 1.0 ApeCoin/Tether|AXSUSDT crypto 7 3 .95 Axie Infinity/Tether
GOLD metal 2350 2 .16 Gold Spot
Silver metal 28 3 .28 Silver Spot|Platinum metal 1000 2 .25 Platinum Spot
Palladium metal 1000 2 .35 Palladium Spot|XAUUSD metal 2350 2 .16 Gold/US Dollar
XAGUSD metal 28 3 .28 Silver/US Dollar|COPPER metal 4.6 4 .22 Copper Futures
Aluminum metal 2500 2 .20 Aluminium|Nickel metal 18000 2 .30 Nickel
USOIL energy 79 2 .35 WTI Crude Oil|UKOIL energy 83 2 .33 Brent Crude Oil
NGAS energy 2.4 3 .60 Natural Gas|US30 cfd 39000 1 .15 US Wall Street 30
US500 cfd 5200 1 .16 US SPX 500|NAS100 cfd 18000 1 .20 US Tech 100
US2000 cfd 2050 1 .22 US Small Cap 2000|GER40 cfd 18700 1 .17 Germany 40
UK100 cfd 8400 1 .13 UK 100|FRA40 cfd 8100 1 .16 France 40|EU50 cfd 5000 1 .17 Euro Stocks 50
JPN225 cfd 38500 0 .20 Japan 225|HK50 cfd 19000 0 .24 Hong Kong 50
AUS200 cfd 7800 1 .14 Australia 200|CHINA50 cfd 12500 0 .24 China A50
"""

_HK_LOTS = (100, 200, 500, 1000, 2000)


def _unit(code: str, what: str) -> float:
    """A stable number in [0, 1) for ``code``: spreads volatilities and volumes."""
    return stable_hash(code, what) / 2**64


_US_ITEM = re.compile(r"(\S+?)\|([^|]+?)\|(NASDAQ|NYSE)\|([\d.]+)")
_LISTED_ITEM = re.compile(r"(\S+?)\|([^|]+?)\|([\d.]+)\|(\S+)")


def _stocks() -> Iterator[Instrument]:
    for ticker, name, exchange, price in _US_ITEM.findall(_US):
        code = f"{ticker}.US"
        yield Instrument(
            code, name, STOCK, "US", float(price), 2, 0.22 + 0.3 * _unit(code, "vol"),
            "USD", exchange, name, 1, 2e6 + 4e7 * _unit(code, "volume"),
        )  # fmt: skip
    for market, raw, exchange, currency in (
        ("HK", _HK, "SEHK", "HKD"),
        ("SH", _SH, "SSE", "CNY"),
        ("SZ", _SZ, "SZSE", "CNY"),
    ):
        for number, name, price, name_cn in _LISTED_ITEM.findall(raw):
            code = f"{number}.{market}"
            lot = 100
            if market == "HK" and code != "700.HK":
                lot = _HK_LOTS[int(_unit(code, "lot") * len(_HK_LOTS))]
            yield Instrument(
                code, name, STOCK, market, float(price), 3 if market == "HK" else 2,
                0.25 + 0.3 * _unit(code, "vol"), currency, exchange, name_cn, lot,
                1e6 + 8e7 * _unit(code, "volume"),
            )  # fmt: skip
    for code, name, level, name_cn in _LISTED_ITEM.findall(_INDICES):
        market = code.rsplit(".", 1)[1]
        yield Instrument(
            code, name, INDEX, market, float(level), 2, 0.18, _CURRENCY[market],
            _INDEX_EXCHANGE.get(code, _EXCHANGE[market]), name_cn, 1,
            3e9 + 2e9 * _unit(code, "volume"),
        )  # fmt: skip
    for code, name, price, name_cn in _LISTED_ITEM.findall(_ETFS):
        market = code.rsplit(".", 1)[1]
        yield Instrument(
            code, name, ETF, market, float(price), 2 if market == "US" else 3, 0.2,
            _CURRENCY[market], "NYSE" if code in _NYSE_ETFS else _LISTING[market], name_cn,
            _ETF_LOTS.get(code, 1 if market == "US" else 100),
            5e6 + 5e7 * _unit(code, "volume"),
        )  # fmt: skip


_CURRENCY = {"US": "USD", "HK": "HKD", "SH": "CNY", "SZ": "CNY"}
_EXCHANGE = {"US": "NASDAQ", "HK": "HKEX", "SH": "SSE", "SZ": "SZSE"}
_INDEX_EXCHANGE = {"DJI.US": "NYSE", "SPX.US": "NYSE"}


def _forex() -> Iterator[Instrument]:
    for line in _FOREX.strip().splitlines():
        for item in line.split("|"):
            code, cls, price, decimals, vol, name = item.split(maxsplit=5)
            currency = "USD" if cls != FX else code[3:]
            volume = 0.0
            if cls == CRYPTO:
                volume = 1.5e9 * (0.2 + _unit(code, "volume")) / float(price)
            yield Instrument(
                code, name, cls, None, float(price), int(decimals), float(vol), currency,
                {FX: "FX", CRYPTO: "CRYPTO", METAL: "COMEX", ENERGY: "NYMEX", CFD: "CFD"}[cls],
                name, 1, volume,
            )  # fmt: skip


#: Generated stocks (see the module docstring): how many per market, and their numbering.
_GENERATED_US = [f"Q{a}{b}" for a in "ABCD" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
_GENERATED_HK = [str(n) for n in range(8001, 8041)]
_GENERATED_SZ = [str(n) for n in range(301001, 301041)]


def _generated() -> Iterator[Instrument]:
    """Synthetic stocks with made-up names, deterministic from their codes alone."""
    for ticker in _GENERATED_US:
        code = f"{ticker}.US"
        yield Instrument(
            code, f"Generated {ticker} Inc.", STOCK, "US",
            float(round(10 + 290 * _unit(code, "price"))),
            2, 0.22 + 0.3 * _unit(code, "vol"), "USD", "NASDAQ", f"Generated {ticker} Inc.", 1,
            2e6 + 4e7 * _unit(code, "volume"),
        )  # fmt: skip
    for market, numbers, exchange, top in (
        ("HK", _GENERATED_HK, "SEHK", 50),
        ("SZ", _GENERATED_SZ, "SZSE", 100),
    ):
        for number in numbers:
            code = f"{number}.{market}"
            lot = _HK_LOTS[int(_unit(code, "lot") * len(_HK_LOTS))] if market == "HK" else 100
            yield Instrument(
                code, f"Generated {number}", STOCK, market,
                round(1 + top * _unit(code, "price"), 1), 3 if market == "HK" else 2,
                0.25 + 0.3 * _unit(code, "vol"), _CURRENCY[market], exchange,
                f"合成{number}", lot, 1e6 + 8e7 * _unit(code, "volume"),
            )  # fmt: skip


class Catalogue(Mapping[str, Instrument]):
    """The code list: a read-only mapping from code to :class:`Instrument`, in a stable order."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self._by_code: dict[str, Instrument] = {}
        for inst in instruments:
            if inst.code in self._by_code:
                raise ValueError(f"code {inst.code} is listed twice")
            info = classify(inst.code)
            if info.market != inst.market:
                raise ValueError(f"{inst.code} routes to {info.market}, listed as {inst.market}")
            self._by_code[inst.code] = replace(
                inst,
                book_status=_BOOK_STATUS.get(inst.code, NORMAL),
                seed=stable_hash("path", inst.code),
            )

    def __getitem__(self, code: str) -> Instrument:
        return self._by_code[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    @cached_property
    def rows(self) -> list[dict[str, object]]:
        """Every instrument as ``GET /_emulator/codes`` reports it."""
        return [inst.to_json() for inst in self._by_code.values()]


def build_catalogue() -> Catalogue:
    """The built-in catalogue (about 600 codes: the named ones first, then generated ones)."""
    return Catalogue([*_stocks(), *_forex(), *_generated()])


#: The shared, immutable built-in catalogue.
CATALOGUE = build_catalogue()
