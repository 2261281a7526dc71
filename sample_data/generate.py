"""Seeded synthetic shops for rectransfer: four source retailers and one small target retailer.

Run ``python sample_data/generate.py [--out sample_data] [--seed 7]``; the same seed always writes
byte-identical parquet files. Import it and call :func:`generate` to rebuild the data elsewhere.

Planted behaviours (identical at every shop, so what a ranker learns at one transfers to another):

* **A shared universe of product kinds.** Nine domains (camping, running, coffee, baking, home
  office, dogs, yoga, cycling, gardening) of four or five kinds each. Every shop sells every kind
  but has its own catalogue: its own SKUs, brands, title templates, synonym subsets, category
  labels, description style and price rounding.
* **Complementary chains.** Within a domain the kinds form a chain (tent -> sleeping bag ->
  sleeping pad -> camp stove -> headlamp; espresso machine -> burr grinder -> coffee beans -> milk
  frother; ...). A customer's next product is the next kind of the chain with probability
  ``P_CHAIN``; otherwise (and always at the end of a chain) a product of a random kind from one of
  the customer's interest domains, or, with probability ``P_POPULAR``, a globally popular product.
* **Popularity.** Inside a kind the product is drawn from a Zipf-like popularity that drifts a
  little over the 180-day window; some products launch part-way through it.
* **Taste in text.** Every customer has one or two interest domains, a price tier (budget,
  mid-range, premium) and may be brand-loyal. About ``P_TEXT`` of them have a ``users.parquet``
  row whose text (review snippets, searches, profile tags) reveals their interests, and often
  their tier, in their own words, never with product titles, plus some noise. Customers without
  text have no row. Inside a kind, budget customers lean to the cheap end and premium ones to the
  dear end (whose descriptions say "Great value." or "Premium materials throughout."), and loyal
  customers to the brand they last bought in that domain.
* **Shop variety.** ``urban_pantry`` logs views, carts and purchases (``event``);
  ``harbor_home`` logs a ``quantity`` and ships its interactions shuffled; ``northwind_outfitters``
  sorts by time instead of by customer; the target ``trailhead_market`` is small, logs mostly
  purchases, is shuffled, has ``n_new_items`` products that launch after the window (nobody has
  interacted with them) and ``n_cold_users`` customers with text but no history.
"""

import argparse
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

BASE_DATE = datetime(2026, 3, 1, tzinfo=UTC)  # start of the interaction window
WINDOW_DAYS = 180
DAY = 86_400

P_CHAIN = 0.65  # next product is the next kind of the chain
P_POPULAR = 0.10  # next product is a globally popular one
P_TEXT = 0.70  # customers with their own text in users.parquet
TIERS = (0.3, 0.45, 0.25)  # shares of budget, mid-range and premium customers
TIER_CENTRE = (0.1, 0.5, 0.9)  # where in a kind's price range each tier shops
TIER_WIDTH = (0.25, 0.6, 0.25)  # how strictly
P_LOYAL = 0.5  # customers who stick to a brand inside a domain
LOYALTY = 4.0  # weight of the brand they last bought in that domain
DRIFT_SD = 0.8  # log-popularity change over the whole window
OUT_OF_STOCK_SHARE = 0.05
MIN_EVENTS, MAX_EVENTS = 3, 15


# --------------------------------------------------------------------------------------------
# The product universe
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of product, with the words shops may use for it."""

    name: str
    nouns: tuple[str, ...]  # synonyms for the product itself
    mods: tuple[str, ...]  # attributes that go in front of the noun
    variants: tuple[str, ...]  # sizes and versions ("for Two", "500 g")
    leaves: tuple[str, ...]  # category leaf labels
    price: tuple[float, float]  # realistic price range
    features: tuple[str, ...]  # description sentences
    consumable: bool = False  # bought in quantities


@dataclass(frozen=True)
class Domain:
    """A domain of kinds in chain order, with category labels and customers' ways to talk."""

    name: str
    labels: tuple[str, ...]  # category top-level labels
    uses: tuple[str, ...]  # "ideal for ..." phrases for descriptions
    voice: tuple[str, ...]  # how customers describe this interest, in their own words
    kinds: tuple[Kind, ...]  # in chain order


DOMAINS: tuple[Domain, ...] = (
    Domain(
        "camping",
        ("Camping", "Camp & Hike", "Outdoor"),
        ("weekend backcountry trips", "nights under the stars", "multi-day treks"),
        (
            "love weekend backpacking trips in the mountains, need lighter gear",
            "planning a week of wild camping in the highlands this summer",
            "we sleep under the stars whenever we can",
            "first overnight hike with the kids coming up",
            "freezing nights at the campsite last time, never again",
            "thru-hike prep, counting every gram",
            "lakeside weekends away from the city most of the summer",
            "national park road trip with nights outdoors",
        ),
        (
            Kind(
                "tent",
                ("Tent", "Dome Tent", "Backpacking Tent", "Trekking Shelter", "Hiking Tent"),
                ("Ultralight", "2-Person", "Three-Season", "Freestanding", "Storm-Proof"),
                ("for Two", "1-2 Person", "3-Person", "Olive", "Sand"),
                ("Tents", "Shelters"),
                (120.0, 450.0),
                (
                    "Pitches in minutes with colour-coded poles.",
                    "Full-coverage rain fly and a bathtub floor keep the weather out.",
                    "Two doors and two vestibules leave room for packs and boots.",
                    "Packs down small enough to strap under a rucksack lid.",
                ),
            ),
            Kind(
                "sleeping bag",
                ("Sleeping Bag", "Mummy Bag", "Down Sleeping Bag", "Sleep Sack"),
                ("Down", "Synthetic", "-5C Comfort", "Compressible", "Three-Season"),
                ("Regular", "Long", "Left Zip", "Right Zip"),
                ("Sleeping Bags", "Sleep Systems"),
                (60.0, 320.0),
                (
                    "Draft collar and hood trap warmth on cold nights.",
                    "Compresses into the included stuff sack.",
                    "Water-resistant shell fabric sheds tent condensation.",
                ),
            ),
            Kind(
                "sleeping pad",
                ("Sleeping Pad", "Sleep Mat", "Inflatable Mattress", "Camp Pad"),
                ("Self-Inflating", "Insulated", "Closed-Cell Foam", "Ultralight", "Wide"),
                ("Regular", "Long Wide", "R-Value 4"),
                ("Sleeping Pads", "Sleep Systems"),
                (30.0, 160.0),
                (
                    "Insulates you from the cold ground.",
                    "Inflates in a few breaths with the one-way valve.",
                    "Baffled design stops you rolling off in the night.",
                ),
            ),
            Kind(
                "camp stove",
                ("Camp Stove", "Backpacking Stove", "Canister Stove", "Cook System"),
                ("Compact", "Piezo-Ignition", "Titanium", "Two-Burner", "Windproof"),
                ("1L Pot", "Solo", "Family"),
                ("Stoves", "Camp Kitchen"),
                (35.0, 180.0),
                (
                    "Boils a litre of water in about three minutes.",
                    "Folds flat and nests inside its own pot.",
                    "Simmer control for real meals, not just boiled water.",
                ),
            ),
            Kind(
                "headlamp",
                ("Headlamp", "Head Torch", "LED Head Light"),
                ("Rechargeable", "400-Lumen", "Red-Light", "Waterproof", "Lightweight"),
                ("USB-C", "Black", "Orange"),
                ("Lighting", "Headlamps"),
                (18.0, 70.0),
                (
                    "Red night mode keeps your night vision and your tent mates asleep.",
                    "Tilting head and comfortable elastic band.",
                    "Runs for hours on a single charge.",
                ),
            ),
        ),
    ),
    Domain(
        "running",
        ("Running", "Run", "Sports > Running"),
        ("long trail runs", "race day", "daily training"),
        (
            "training for my first trail half marathon",
            "run most mornings before work, knees complain on long runs",
            "ultra runner, long days on rocky paths",
            "couch to 10k and actually enjoying it",
            "chasing a marathon personal best this autumn",
            "hill repeats on muddy paths every sunday",
            "signed up for a mountain race, need to step up my training",
        ),
        (
            Kind(
                "trail running shoes",
                ("Trail Running Shoes", "Trail Runners", "Off-Road Running Shoe"),
                ("Grippy", "Cushioned", "Lightweight", "Waterproof", "Rock-Plate"),
                ("Men's", "Women's", "Wide Fit"),
                ("Trail Shoes", "Footwear"),
                (90.0, 190.0),
                (
                    "Aggressive lugs bite into mud and loose rock.",
                    "Protective toe cap and cushioned midsole for long days.",
                    "Breathable upper drains fast after stream crossings.",
                ),
            ),
            Kind(
                "running socks",
                ("Running Socks", "Performance Socks", "Anti-Blister Socks"),
                ("Merino", "Cushioned", "Low-Cut", "Compression", "Seamless"),
                ("3-Pack", "Pair", "Size M", "Size L"),
                ("Socks", "Apparel"),
                (10.0, 35.0),
                (
                    "Seamless toe and snug heel stop blisters.",
                    "Wicks sweat and dries quickly.",
                    "Targeted cushioning under the heel and forefoot.",
                ),
                consumable=True,
            ),
            Kind(
                "hydration vest",
                ("Hydration Vest", "Running Vest", "Race Pack"),
                ("5L", "12L", "Lightweight", "Bounce-Free", "Adjustable"),
                ("with Soft Flasks", "S/M", "L/XL"),
                ("Hydration", "Packs"),
                (60.0, 160.0),
                (
                    "Front flask pockets you can reach without stopping.",
                    "Sits close to the body and does not bounce.",
                    "Room for a jacket, gels and a phone.",
                ),
            ),
            Kind(
                "gps watch",
                ("GPS Watch", "Running Watch", "Multisport Watch"),
                ("Heart-Rate", "Solar", "Long-Battery", "Altimeter", "Touchscreen"),
                ("42mm", "47mm", "Black", "Slate"),
                ("Watches", "Electronics"),
                (150.0, 500.0),
                (
                    "Tracks pace, distance and heart rate on every run.",
                    "Battery lasts for days of training.",
                    "Breadcrumb navigation gets you back to the trailhead.",
                ),
            ),
            Kind(
                "foam roller",
                ("Foam Roller", "Massage Roller", "Recovery Roller"),
                ("High-Density", "Textured", "Vibrating", "Travel-Size"),
                ("33 cm", "45 cm", "Blue", "Black"),
                ("Recovery", "Training Aids"),
                (15.0, 90.0),
                (
                    "Loosens tight calves and hamstrings after hard sessions.",
                    "Firm foam that keeps its shape.",
                ),
            ),
        ),
    ),
    Domain(
        "coffee",
        ("Coffee", "Coffee & Tea", "Kitchen > Coffee"),
        ("cafe-style drinks at home", "your morning cup", "home baristas"),
        (
            "morning espresso ritual, looking for better beans",
            "latte art hobbyist, still learning to pour hearts",
            "can't start the day without a proper flat white",
            "home barista trying to dial in my shots",
            "cafe-quality cappuccino at home is the dream",
            "single origin nerd, light roasts please",
            "spend too much at the coffee shop, time to make it myself",
        ),
        (
            Kind(
                "espresso machine",
                ("Espresso Machine", "Espresso Maker", "Home Espresso Machine"),
                ("15-Bar", "Semi-Automatic", "Dual-Boiler", "Compact", "Stainless Steel"),
                ("Silver", "Black", "with Steam Wand"),
                ("Espresso Machines", "Coffee Machines"),
                (180.0, 900.0),
                (
                    "Stable brew temperature for sweet, balanced shots.",
                    "Powerful steam wand for silky microfoam.",
                    "Heats up in under a minute.",
                ),
            ),
            Kind(
                "burr grinder",
                ("Burr Grinder", "Coffee Grinder", "Conical Grinder"),
                ("Conical", "Flat-Burr", "40-Setting", "Stepless", "Manual"),
                ("Black", "Brushed Steel", "Espresso Edition"),
                ("Grinders", "Coffee Tools"),
                (40.0, 350.0),
                (
                    "Even particle size from espresso-fine to French-press coarse.",
                    "Low-retention path keeps every dose fresh.",
                    "Quiet motor for early mornings.",
                ),
            ),
            Kind(
                "coffee beans",
                ("Coffee Beans", "Whole Bean Coffee", "Espresso Roast", "Single-Origin Beans"),
                ("Dark Roast", "Medium Roast", "Ethiopian", "Colombian", "Fair-Trade"),
                ("1 kg", "500 g", "250 g"),
                ("Coffee Beans", "Beans & Grounds"),
                (9.0, 38.0),
                (
                    "Roasted in small batches and shipped within days.",
                    "Notes of chocolate, caramel and red fruit.",
                    "Great as espresso and in milk drinks.",
                ),
                consumable=True,
            ),
            Kind(
                "milk frother",
                ("Milk Frother", "Frothing Pitcher", "Milk Foamer", "Steaming Jug"),
                ("Electric", "Handheld", "Stainless", "Induction", "Cold-Foam"),
                ("350 ml", "600 ml", "White", "Black"),
                ("Frothers", "Coffee Tools"),
                (15.0, 120.0),
                (
                    "Makes dense foam for lattes and cappuccinos.",
                    "Spout shaped for pouring latte art.",
                ),
            ),
        ),
    ),
    Domain(
        "baking",
        ("Baking", "Bakeware", "Kitchen > Baking"),
        ("weekend baking", "birthday cakes", "holiday cookies"),
        (
            "weekend sourdough and cookie baker",
            "bake birthday cakes for the whole family",
            "learning to make croissants and bread from scratch",
            "bake off fan, attempting layer cakes",
            "holiday cookies are my thing every december",
            "my kids love making muffins with me on rainy days",
        ),
        (
            Kind(
                "stand mixer",
                ("Stand Mixer", "Kitchen Mixer", "Tilt-Head Mixer"),
                ("5-Quart", "10-Speed", "Professional", "Compact", "Bowl-Lift"),
                ("Red", "Cream", "Graphite"),
                ("Mixers", "Small Appliances"),
                (150.0, 550.0),
                (
                    "Kneads heavy bread dough without straining.",
                    "Comes with a dough hook, whisk and flat beater.",
                    "Planetary action reaches every corner of the bowl.",
                ),
            ),
            Kind(
                "mixing bowls",
                ("Mixing Bowl Set", "Nesting Bowls", "Prep Bowls"),
                ("Stainless", "Glass", "Non-Slip", "Stackable"),
                ("Set of 3", "Set of 5", "with Lids"),
                ("Bowls", "Prep"),
                (20.0, 70.0),
                (
                    "Nest together to save cupboard space.",
                    "Non-slip base keeps the bowl still while you whisk.",
                ),
            ),
            Kind(
                "baking sheet",
                ("Baking Sheet", "Sheet Pan", "Cookie Sheet", "Baking Tray"),
                ("Non-Stick", "Aluminium", "Rimmed", "Heavy-Gauge", "Warp-Resistant"),
                ("Half Size", "Set of 2", "Quarter Size"),
                ("Sheets & Trays", "Bakeware"),
                (12.0, 45.0),
                (
                    "Bakes evenly with no hot spots.",
                    "Rolled edges resist warping in a hot oven.",
                ),
            ),
            Kind(
                "cooling rack",
                ("Cooling Rack", "Wire Rack", "Baking Rack"),
                ("Stainless", "Stackable", "Oven-Safe", "Grid"),
                ("Set of 2", "Three-Tier", "Half Sheet"),
                ("Racks", "Baking Tools"),
                (10.0, 30.0),
                (
                    "Air flows all round so bakes do not go soggy.",
                    "Tight grid keeps small cookies from slipping through.",
                ),
            ),
            Kind(
                "piping set",
                ("Piping Bag Set", "Cake Decorating Kit", "Icing Tip Set"),
                ("24-Piece", "Reusable", "Stainless Tip", "Beginner"),
                ("with Couplers", "Pastel", "Deluxe"),
                ("Decorating", "Baking Tools"),
                (12.0, 45.0),
                (
                    "Tips for rosettes, stars, leaves and lettering.",
                    "Reusable bags that are easy to wash.",
                ),
            ),
        ),
    ),
    Domain(
        "home office",
        ("Home Office", "Office", "Furniture > Office"),
        ("long days at the desk", "remote work", "a healthier workspace"),
        (
            "working from home full time, back pain from the kitchen chair",
            "setting up a proper workspace in the spare room",
            "remote developer, long hours at the computer",
            "need a better setup for video calls and spreadsheets",
            "neck strain from looking down at the laptop all day",
            "freelancer, my dining table is not an office",
        ),
        (
            Kind(
                "standing desk",
                ("Standing Desk", "Sit-Stand Desk", "Height-Adjustable Desk"),
                ("Electric", "Dual-Motor", "Memory-Preset", "Solid Oak", "Compact"),
                ("120 x 60 cm", "140 x 70 cm", "White", "Walnut"),
                ("Desks", "Furniture"),
                (250.0, 800.0),
                (
                    "Moves from sitting to standing height in seconds.",
                    "Stable frame with no wobble at full height.",
                    "Cable tray keeps the wires out of sight.",
                ),
            ),
            Kind(
                "ergonomic chair",
                ("Ergonomic Chair", "Office Chair", "Task Chair", "Mesh Desk Chair"),
                ("Lumbar-Support", "Breathable Mesh", "Adjustable", "High-Back", "4D-Armrest"),
                ("Black", "Grey", "with Headrest"),
                ("Chairs", "Seating"),
                (150.0, 700.0),
                (
                    "Adjustable lumbar support for all-day comfort.",
                    "Seat depth, height and armrests all adjust.",
                    "Breathable back keeps you cool on long days.",
                ),
            ),
            Kind(
                "monitor arm",
                ("Monitor Arm", "Monitor Mount", "Screen Arm"),
                ("Gas-Spring", "Single", "Dual", "Clamp-On", "Full-Motion"),
                ("Black", "Silver", "up to 32 in"),
                ("Monitor Mounts", "Desk Accessories"),
                (40.0, 180.0),
                (
                    "Brings the screen to eye level and frees desk space.",
                    "Tilts, swivels and rotates with one hand.",
                ),
            ),
            Kind(
                "desk lamp",
                ("Desk Lamp", "LED Task Light", "Architect Lamp"),
                ("Dimmable", "Adjustable", "Clamp", "Warm-White", "Eye-Care"),
                ("Black", "Brass", "White"),
                ("Lighting", "Lamps"),
                (25.0, 120.0),
                (
                    "Flicker-free light that is easy on the eyes.",
                    "Adjustable arm puts the light where you need it.",
                ),
            ),
            Kind(
                "wireless keyboard",
                ("Wireless Keyboard", "Mechanical Keyboard", "Bluetooth Keyboard"),
                ("Low-Profile", "Backlit", "Quiet", "Compact", "Multi-Device"),
                ("UK Layout", "US Layout", "Tenkeyless"),
                ("Keyboards", "Computer Accessories"),
                (35.0, 180.0),
                (
                    "Pairs with up to three devices and switches at a tap.",
                    "Comfortable keys for long typing sessions.",
                ),
            ),
        ),
    ),
    Domain(
        "dogs",
        ("Pets", "Dog Supplies", "Pets > Dogs"),
        ("dogs of every size", "daily walks", "happy, healthy dogs"),
        (
            "new puppy at home, a very energetic labrador",
            "adopted a rescue dog last month",
            "my old golden retriever has stiff joints",
            "dog walks twice a day rain or shine",
            "first-time dog owner, no idea what i need",
            "our terrier destroys everything he can get his teeth into",
        ),
        (
            Kind(
                "dog crate",
                ("Dog Crate", "Pet Kennel", "Wire Crate"),
                ("Foldable", "Double-Door", "Heavy-Duty", "Travel"),
                ("Medium", "Large", "XL"),
                ("Crates & Kennels", "Dog Housing"),
                (50.0, 200.0),
                (
                    "Folds flat for the car or storage.",
                    "Removable tray makes cleaning easy.",
                ),
            ),
            Kind(
                "dog bed",
                ("Dog Bed", "Orthopedic Pet Bed", "Bolster Bed"),
                ("Memory-Foam", "Washable", "Calming", "Waterproof"),
                ("Medium", "Large", "Grey", "Brown"),
                ("Beds", "Dog Beds"),
                (30.0, 150.0),
                (
                    "Supportive foam for achy joints.",
                    "Removable cover goes in the washing machine.",
                ),
            ),
            Kind(
                "dog food",
                ("Dog Food", "Dry Kibble", "Adult Dog Food"),
                ("Grain-Free", "Salmon", "Chicken & Rice", "Puppy", "Senior"),
                ("12 kg", "6 kg", "2 kg"),
                ("Food", "Dog Food"),
                (20.0, 80.0),
                (
                    "Complete nutrition with real meat as the first ingredient.",
                    "Crunchy kibble that supports healthy teeth.",
                ),
                consumable=True,
            ),
            Kind(
                "chew toy",
                ("Chew Toy", "Dog Toy", "Tug Rope"),
                ("Durable", "Squeaky", "Treat-Dispensing", "Natural Rubber"),
                ("Small", "Large", "2-Pack"),
                ("Toys", "Dog Toys"),
                (6.0, 25.0),
                (
                    "Tough enough for power chewers.",
                    "Keeps busy dogs entertained for hours.",
                ),
                consumable=True,
            ),
            Kind(
                "dog leash",
                ("Dog Leash", "Walking Lead", "Retractable Leash"),
                ("Reflective", "Padded-Handle", "Hands-Free", "Heavy-Duty"),
                ("1.5 m", "5 m", "Black", "Red"),
                ("Leads & Collars", "Walking"),
                (12.0, 50.0),
                (
                    "Reflective stitching for dark evening walks.",
                    "Strong clip and a comfortable grip.",
                ),
            ),
        ),
    ),
    Domain(
        "yoga",
        ("Yoga", "Fitness > Yoga", "Wellness"),
        ("daily practice", "stretching and balance", "calm mornings"),
        (
            "daily vinyasa practice in the living room",
            "beginner at yoga, very inflexible hamstrings",
            "mindfulness and breathing before bed",
            "hot yoga three times a week",
            "stretching routine for a stiff lower back",
            "want to start meditating every morning",
        ),
        (
            Kind(
                "yoga mat",
                ("Yoga Mat", "Exercise Mat", "Practice Mat"),
                ("Non-Slip", "Extra-Thick", "Natural Rubber", "Travel", "Eco"),
                ("4 mm", "6 mm", "Plum", "Teal"),
                ("Mats", "Yoga Mats"),
                (25.0, 120.0),
                (
                    "Grippy surface that holds in downward dog.",
                    "Cushions knees without feeling unstable.",
                ),
            ),
            Kind(
                "yoga blocks",
                ("Yoga Block", "Cork Block", "Foam Block Pair"),
                ("Cork", "High-Density", "Lightweight", "Eco"),
                ("Set of 2", "Single", "Purple"),
                ("Props", "Yoga Props"),
                (10.0, 35.0),
                (
                    "Brings the floor closer in standing poses.",
                    "Firm and stable under your hands.",
                ),
            ),
            Kind(
                "yoga strap",
                ("Yoga Strap", "Stretching Strap", "Stretch Band"),
                ("Cotton", "D-Ring", "Loop", "Adjustable"),
                ("2.4 m", "3 m", "Grey"),
                ("Props", "Straps"),
                (8.0, 25.0),
                (
                    "Extends your reach in seated stretches.",
                    "Secure buckle that does not slip.",
                ),
            ),
            Kind(
                "meditation cushion",
                ("Meditation Cushion", "Zafu", "Floor Cushion"),
                ("Buckwheat", "Crescent", "Organic Cotton", "Round"),
                ("Indigo", "Saffron", "Charcoal"),
                ("Meditation", "Cushions"),
                (30.0, 90.0),
                (
                    "Raises the hips for a comfortable cross-legged seat.",
                    "Buckwheat fill moulds to your posture.",
                ),
            ),
        ),
    ),
    Domain(
        "cycling",
        ("Cycling", "Bike", "Sports > Cycling"),
        ("daily commutes", "long club rides", "riding after dark"),
        (
            "commute to work by bike every day",
            "road cycling on weekends, 80 km club rides",
            "gravel riding through the countryside",
            "riding home after dark all winter",
            "getting back on the saddle after years away",
            "my last ride was stolen from outside the station",
        ),
        (
            Kind(
                "bike helmet",
                ("Bike Helmet", "Cycling Helmet", "Road Helmet"),
                ("MIPS", "Ventilated", "Aero", "Lightweight", "Commuter"),
                ("S/M", "M/L", "Matte Black", "White"),
                ("Helmets", "Protection"),
                (40.0, 250.0),
                (
                    "In-mould shell with rotational impact protection.",
                    "Plenty of vents for hot climbs.",
                ),
            ),
            Kind(
                "cycling gloves",
                ("Cycling Gloves", "Bike Gloves", "Padded Mitts"),
                ("Gel-Padded", "Fingerless", "Windproof", "Touchscreen"),
                ("S", "M", "L"),
                ("Gloves", "Apparel"),
                (15.0, 60.0),
                (
                    "Gel pads take the buzz out of rough roads.",
                    "Terry thumb for wiping sweat.",
                ),
            ),
            Kind(
                "bike lights",
                ("Bike Light Set", "Front and Rear Lights", "Cycling Lights"),
                ("USB-Rechargeable", "800-Lumen", "Daytime-Flash", "Waterproof"),
                ("Set", "Front Only", "Rear Only"),
                ("Lights", "Accessories"),
                (20.0, 120.0),
                (
                    "Bright enough to be seen from hundreds of metres away.",
                    "Tool-free mount fits any handlebar.",
                ),
            ),
            Kind(
                "bike lock",
                ("Bike Lock", "U-Lock", "Folding Lock", "Chain Lock"),
                ("Hardened-Steel", "Sold Secure Gold", "Compact", "Keyed"),
                ("with Frame Mount", "90 cm", "Mini"),
                ("Locks", "Security"),
                (25.0, 120.0),
                (
                    "Hardened steel that resists bolt cutters.",
                    "Frame bracket carries it on every ride.",
                ),
            ),
            Kind(
                "bottle cage",
                ("Bottle Cage", "Bidon Cage", "Water Bottle Holder"),
                ("Carbon", "Side-Entry", "Alloy", "Lightweight"),
                ("Black", "Red", "Pair"),
                ("Bottles & Cages", "Accessories"),
                (8.0, 45.0),
                (
                    "Holds the bottle tight on rough roads.",
                    "Weighs next to nothing.",
                ),
            ),
        ),
    ),
    Domain(
        "gardening",
        ("Garden", "Gardening", "Outdoor Living > Garden"),
        ("vegetable patches", "balcony growing", "the growing season"),
        (
            "growing tomatoes and herbs on the balcony",
            "started a vegetable patch in the backyard",
            "want to grow our own food this spring",
            "allotment holder, mostly beans and squash",
            "green thumb in training, the windowsill is full",
            "sowing from seed for the first time this year",
        ),
        (
            Kind(
                "raised garden bed",
                ("Raised Garden Bed", "Planter Box", "Elevated Planter"),
                ("Cedar", "Galvanised", "Modular", "Tall"),
                ("120 x 60 cm", "180 x 90 cm", "Natural"),
                ("Raised Beds", "Planters"),
                (60.0, 250.0),
                (
                    "Warms up early in spring and drains well.",
                    "Assembles in minutes without tools.",
                ),
            ),
            Kind(
                "potting soil",
                ("Potting Soil", "Potting Mix", "Compost Blend"),
                ("Peat-Free", "Organic", "Seed & Cutting", "Multi-Purpose"),
                ("40 L", "20 L", "10 L"),
                ("Soil & Compost", "Growing Media"),
                (8.0, 30.0),
                (
                    "Rich, crumbly mix that holds water without waterlogging.",
                    "Feeds plants for up to six weeks.",
                ),
                consumable=True,
            ),
            Kind(
                "seed starter kit",
                ("Seed Starter Kit", "Seed Tray Set", "Propagator"),
                ("Heated", "Vented", "Reusable", "24-Cell"),
                ("with Lid", "Windowsill", "Large"),
                ("Propagation", "Seeds & Growing"),
                (15.0, 60.0),
                (
                    "Humidity dome gives seedlings a strong start.",
                    "Cells pop out without disturbing roots.",
                ),
            ),
            Kind(
                "watering can",
                ("Watering Can", "Watering Jug", "Indoor Watering Can"),
                ("Long-Spout", "Galvanised", "Fine-Rose", "Recycled"),
                ("5 L", "9 L", "1 L", "Green"),
                ("Watering", "Garden Tools"),
                (12.0, 50.0),
                (
                    "Fine rose waters seedlings gently.",
                    "Balanced handle for an easy pour.",
                ),
            ),
            Kind(
                "pruning shears",
                ("Pruning Shears", "Secateurs", "Bypass Pruner"),
                ("Bypass", "Ratchet", "Carbon-Steel", "Ergonomic"),
                ("Small Hands", "Standard", "Red"),
                ("Cutting Tools", "Garden Tools"),
                (15.0, 60.0),
                (
                    "Clean cuts that heal fast.",
                    "Spring action and a safety lock.",
                ),
            ),
        ),
    ),
)

NOISE: tuple[str, ...] = (
    "fast delivery please",
    "gift for my brother",
    "prefer eco-friendly brands",
    "budget is tight this month",
    "saw you on instagram",
    "great service last time",
    "returns were easy",
    "shopping for birthday presents",
    "just moved into a new flat",
    "i like things that last",
    "size medium usually",
    "free shipping over 50?",
    "ordered twice before, happy so far",
)

# Price tier in customers' words (budget, premium) and in product descriptions (cheap, dear).
TIER_VOICE: tuple[tuple[str, ...], tuple[str, ...]] = (
    (
        "on a budget, value for money matters",
        "student here, cheap but decent please",
        "always hunting for a good deal",
        "nothing fancy, just something that works",
    ),
    (
        "happy to pay more for quality that lasts",
        "only want top-end stuff",
        "premium quality over price every time",
        "buy once, buy the best",
    ),
)
TIER_COPY: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("Great value.", "Everyday essentials at a fair price.", "Simple, no-frills design."),
    ("Premium materials throughout.", "Our top-of-the-range pick.", "Pro-grade build quality."),
)

BRAND_STEMS: tuple[str, ...] = (
    "Ridge", "Peak", "Alder", "Cinder", "Fjord", "Maple", "Copper", "Juniper", "Slate", "Birch",
    "Ember", "Nimbus", "Orca", "Lark", "Quill", "Tundra", "Willow", "Basalt", "Cobalt", "Drift",
    "Fern", "Granite", "Heron", "Kestrel", "Lumen", "Moss", "Nova", "Otter", "Pine", "Raven",
    "Sage", "Tide", "Umber", "Vale", "Wren", "Yarrow", "Zephyr", "Hollow", "Brook", "Marlow",
)  # fmt: skip
BRAND_TAILS: tuple[str, ...] = (
    "line", "works", " Co.", "craft", " Labs", "field", "wood", " Goods", "ware", "stone",
    " Gear", " & Sons", "ly", " House", " Outfitters",
)  # fmt: skip
COLOURS: tuple[str, ...] = ("Black", "Grey", "Navy", "Olive", "Sand", "Red", "Blue", "White")


# --------------------------------------------------------------------------------------------
# The shops
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopSpec:
    """How one synthetic retailer differs from the others."""

    name: str
    role: str  # "sources" or "targets"
    sku: str  # item id format, e.g. "SS-{:06d}"
    user_id: str  # customer id format
    n_users: int  # customers with interactions
    n_items: int  # catalogue size, new products included
    favourite_domains: tuple[str, ...]  # over-represented in catalogue and interests
    title_templates: tuple[str, ...]
    description_templates: tuple[str, ...]
    boilerplate: str
    label_style: int  # which category label variant the shop uses
    separator: str  # category path separator
    price_ending: float  # cents the prices end in
    mean_extra_events: float  # events beyond MIN_EVENTS, Poisson mean
    extra_column: str | None = None  # "event", "quantity" or None
    row_order: str = "user"  # "user", "time" or "shuffled"
    n_cold_users: int = 0  # customers with text but no interactions
    n_new_items: int = 0  # products launching after the window: nobody has interacted with them
    blank_description_share: float = 0.0
    # event logs, per purchase step: mean views of alternatives of the same kind, chance of a
    # view of the product itself, of adding it to the cart, of buying it
    session: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    noun_share: float = 0.6  # share of each kind's synonyms the shop uses
    zipf_exponent: float = 1.1  # within-kind popularity skew (flatter at the small target)
    min_per_kind: int = 3  # products of every kind in the catalogue
    launch_share: float = 0.08  # products that launch part-way through the window
    browse_share: float = 0.05  # picks inside a kind that ignore popularity


SHOPS: tuple[ShopSpec, ...] = (
    ShopSpec(
        name="summit_supply",
        role="sources",
        sku="SS-{:06d}",
        user_id="ss_c{:05d}",
        n_users=900,
        n_items=340,
        favourite_domains=("camping", "running", "cycling"),
        title_templates=("{brand} {mod} {noun}", "{mod} {noun}, {variant}"),
        description_templates=("{f1} {f2} Ideal for {use}.", "Built for {use}. {f1}"),
        boilerplate="Backed by our two-year Summit guarantee.",
        label_style=0,
        separator=" > ",
        price_ending=0.99,
        mean_extra_events=4.5,
    ),
    ShopSpec(
        name="harbor_home",
        role="sources",
        sku="HH-{:06d}",
        user_id="HH-CUST-{:05d}",
        n_users=820,
        n_items=300,
        favourite_domains=("coffee", "baking", "home office", "gardening"),
        title_templates=("{mod} {noun} - {variant}", "{noun}, {mod}", "{brand} {noun}"),
        description_templates=("{f1} Perfect for {use}. {f2}", "{f1} {f2}"),
        boilerplate="Free returns within 30 days.",
        label_style=1,
        separator=" / ",
        price_ending=0.95,
        mean_extra_events=4.0,
        extra_column="quantity",
        row_order="shuffled",
    ),
    ShopSpec(
        name="urban_pantry",
        role="sources",
        sku="UP{:05d}",
        user_id="up-u{:05d}",
        n_users=760,
        n_items=260,
        favourite_domains=("coffee", "baking", "dogs", "yoga"),
        title_templates=("{mod} {mod2} {noun}", "{brand} {noun} ({variant})"),
        description_templates=("{f1} Great for {use}.", "For {use}: {f1} {f2}"),
        boilerplate="Order by 2pm for same-day dispatch.",
        label_style=2,
        separator=" > ",
        price_ending=0.49,
        mean_extra_events=6.5,
        extra_column="event",
        session=(0.6, 0.5, 0.45, 0.9),
    ),
    ShopSpec(
        name="northwind_outfitters",
        role="sources",
        sku="NWO-{:05d}",
        user_id="nw{:06d}",
        n_users=960,
        n_items=380,
        favourite_domains=("camping", "running", "cycling", "yoga"),
        title_templates=("{noun} | {mod} | {variant}", "{mod} {noun}", "{brand} {mod} {noun}"),
        description_templates=("{f1} {f2} Made for {use}.",),
        boilerplate="Tested in the field by the Northwind team.",
        label_style=0,
        separator=" / ",
        price_ending=0.0,
        mean_extra_events=4.0,
        row_order="time",
    ),
    ShopSpec(
        name="trailhead_market",
        role="targets",
        sku="TM-{:05d}",
        user_id="tm-{:04d}",
        n_users=165,
        n_items=210,
        favourite_domains=("camping", "coffee", "dogs"),
        title_templates=("{mod} {noun}", "{noun} by {brand}", "{mod2} {noun}, {variant}"),
        description_templates=("{f1}", "{f1} Good for {use}."),
        boilerplate="",
        label_style=2,
        separator=" > ",
        price_ending=0.0,
        mean_extra_events=3.8,
        extra_column="event",
        row_order="shuffled",
        n_cold_users=15,
        n_new_items=10,
        blank_description_share=0.04,
        session=(0.25, 0.08, 0.04, 1.0),
        noun_share=0.5,
        zipf_exponent=0.4,
        min_per_kind=2,
        launch_share=0.04,
        browse_share=0.3,
    ),
)


# --------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """A shop's products as aligned arrays plus the frame to write."""

    frame: pl.DataFrame
    domain: np.ndarray  # int (n,), index into DOMAINS
    kind: np.ndarray  # int (n,), position of the kind in its domain's chain
    base_weight: np.ndarray  # float (n,), Zipf popularity inside the kind
    drift: np.ndarray  # float (n,), log-popularity change over the window
    launch: np.ndarray  # float (n,), window fraction from which it can be bought (> 1: never)
    brand: np.ndarray  # int (n,), brand code
    price_pct: np.ndarray  # float (n,), price percentile inside the kind, 0 cheapest, 1 dearest
    browse_share: float  # chance a customer ignores popularity when picking inside a kind


def domain_weights(spec: ShopSpec) -> np.ndarray:
    """Relative weight of each domain at a shop: favourites count three times."""
    return np.array([3.0 if d.name in spec.favourite_domains else 1.0 for d in DOMAINS])


def apportion(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Counts summing to ``total``, proportional to ``weights``, each at least ``minimum``."""
    share = total * weights / weights.sum()
    counts = np.maximum(np.floor(share).astype(int), minimum)
    while counts.sum() != total:
        if counts.sum() < total:
            counts[np.argmax(share - counts)] += 1
        else:
            over = np.where(counts > minimum, counts - share, -np.inf)
            counts[np.argmax(over)] -= 1
    return counts


def kind_slots(rng: np.random.Generator, spec: ShopSpec) -> list[tuple[int, int]]:
    """(domain, kind) of every product, more where demand is (never fewer than a few per kind).

    Demand falls along a chain (fewer customers reach its end) and is higher in favourite domains.
    """
    kinds = [(d, k) for d, dom in enumerate(DOMAINS) for k in range(len(dom.kinds))]
    demand = np.array([domain_weights(spec)[d] * 0.9**k for d, k in kinds])
    counts = apportion(spec.n_items, demand * rng.uniform(0.7, 1.3, len(kinds)), spec.min_per_kind)
    return [kinds[i] for i in range(len(kinds)) for _ in range(int(counts[i]))]


def shop_brands(rng: np.random.Generator) -> list[list[str]]:
    """Three brands per domain, all distinct within the shop."""
    pairs = rng.choice(len(BRAND_STEMS) * len(BRAND_TAILS), 3 * len(DOMAINS), replace=False)
    names = [BRAND_STEMS[p // len(BRAND_TAILS)] + BRAND_TAILS[p % len(BRAND_TAILS)] for p in pairs]
    return [names[3 * d : 3 * d + 3] for d in range(len(DOMAINS))]


def pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    """One option, uniformly."""
    return options[int(rng.integers(len(options)))]


def shop_vocabulary(rng: np.random.Generator, spec: ShopSpec) -> dict[tuple[int, int], list[str]]:
    """The subset of each kind's synonyms the shop uses (shops phrase the same kind differently)."""
    vocab = {}
    for d, dom in enumerate(DOMAINS):
        for k, kind in enumerate(dom.kinds):
            size = max(1, math.ceil(spec.noun_share * len(kind.nouns)))
            chosen = rng.choice(len(kind.nouns), size, replace=False)
            vocab[d, k] = [kind.nouns[i] for i in sorted(chosen)]
    return vocab


def product_title(
    rng: np.random.Generator, spec: ShopSpec, kind: Kind, noun: str, brand: str
) -> str:
    """A title from one of the shop's templates."""
    mod, mod2 = (kind.mods[i] for i in rng.choice(len(kind.mods), 2, replace=False))
    variants = kind.variants + COLOURS[:2] if not kind.consumable else kind.variants
    return pick(rng, spec.title_templates).format(
        brand=brand, mod=mod, mod2=mod2, noun=noun, variant=pick(rng, variants)
    )


def product_description(
    rng: np.random.Generator, spec: ShopSpec, d: int, kind: Kind, price_pct: float
) -> str:
    """A description: the shop's template filled with the kind's features, then a word on value
    for the cheapest and dearest products of the kind, then the shop boilerplate."""
    if rng.random() < spec.blank_description_share:
        return ""
    f1, f2 = (kind.features[i] for i in rng.choice(len(kind.features), 2, replace=False))
    text = pick(rng, spec.description_templates).format(
        f1=f1, f2=f2, use=pick(rng, DOMAINS[d].uses)
    )
    if price_pct <= 0.3 or price_pct >= 0.7:
        text += " " + pick(rng, TIER_COPY[int(price_pct >= 0.7)])
    return f"{text} {spec.boilerplate}".strip()


def product_price(rng: np.random.Generator, spec: ShopSpec, kind: Kind) -> float:
    """Log-uniform in the kind's range, rounded to the shop's price ending."""
    low, high = kind.price
    raw = math.exp(rng.uniform(math.log(low), math.log(high)))
    return round(max(math.floor(raw), 1) + spec.price_ending, 2)


def within_kind_percentile(values: np.ndarray, domain: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Percentile of each value among the products of the same kind (0.5 for a kind of one)."""
    pct = np.full(len(values), 0.5)
    for key in sorted(set(zip(domain.tolist(), kind.tolist(), strict=True))):
        members = np.flatnonzero((domain == key[0]) & (kind == key[1]))
        if len(members) > 1:
            ranks = np.argsort(np.argsort(values[members], kind="stable"), kind="stable")
            pct[members] = ranks / (len(members) - 1)
    return pct


def zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Zipf-like weights over ``n`` products in random rank order."""
    return 1.0 / (rng.permutation(n) + 1.0) ** exponent


def build_catalogue(rng: np.random.Generator, spec: ShopSpec) -> Catalogue:
    """The shop's products: ids, text, category, brand, price, stock and hidden popularity."""
    slots = kind_slots(rng, spec)
    brands, vocab = shop_brands(rng), shop_vocabulary(rng, spec)
    ids = rng.choice(np.arange(1_000, 100_000), len(slots), replace=False)
    domain_of = np.array([d for d, _ in slots])
    kind_of = np.array([k for _, k in slots])
    prices = np.array([product_price(rng, spec, DOMAINS[d].kinds[k]) for d, k in slots])
    price_pct = within_kind_percentile(prices, domain_of, kind_of)
    rows, titles = [], set()
    for s, ((d, k), number) in enumerate(zip(slots, ids, strict=True)):
        dom, kind = DOMAINS[d], DOMAINS[d].kinds[k]
        brand = pick(rng, brands[d])
        for _ in range(20):  # retry for distinct titles
            title = product_title(rng, spec, kind, pick(rng, vocab[d, k]), brand)
            if title not in titles:
                break
        titles.add(title)
        label = dom.labels[spec.label_style % len(dom.labels)]
        leaf = kind.leaves[(spec.label_style + d) % len(kind.leaves)]
        rows.append(
            {
                "item_id": spec.sku.format(int(number)),
                "title": title,
                "description": product_description(rng, spec, d, kind, float(price_pct[s])),
                "category": f"{label}{spec.separator}{leaf}",
                "brand": brand,
                "price": float(prices[s]),
            }
        )
    n = len(rows)
    base = np.zeros(n)
    for key in sorted(set(slots)):
        members = np.flatnonzero((domain_of == key[0]) & (kind_of == key[1]))
        base[members] = zipf_weights(rng, len(members), spec.zipf_exponent)
    launch = np.where(rng.random(n) < spec.launch_share, rng.uniform(0.1, 0.6, n), 0.0)
    launch[rng.choice(n, spec.n_new_items, replace=False)] = 2.0  # never bought in the window
    in_stock = np.ones(n, dtype=bool)  # new products are in stock; some sold products are not
    sold = np.flatnonzero(launch <= 1.0)
    in_stock[rng.choice(sold, round(OUT_OF_STOCK_SHARE * n), replace=False)] = False
    frame = pl.DataFrame(rows).with_columns(
        pl.col("price").cast(pl.Float64), pl.Series("in_stock", in_stock, dtype=pl.Boolean)
    )
    order = rng.permutation(n)  # catalogue rows not grouped by kind
    return Catalogue(
        frame=frame[order],
        domain=domain_of[order],
        kind=kind_of[order],
        base_weight=base[order],
        drift=rng.normal(0.0, DRIFT_SD, n)[order],
        launch=launch[order],
        brand=frame["brand"].rank("dense").to_numpy()[order],
        price_pct=price_pct[order],
        browse_share=spec.browse_share,
    )


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """What drives one customer's choices."""

    interests: tuple[int, ...]  # one or two domains
    tier: int  # 0 budget, 1 mid-range, 2 premium
    loyal: bool  # sticks to the brand last bought in a domain


def draw_customer(rng: np.random.Generator, spec: ShopSpec) -> Customer:
    """One or two interest domains (favourites more likely), a price tier and brand loyalty."""
    w = domain_weights(spec)
    size = 1 if rng.random() < 0.55 else 2
    interests = tuple(int(i) for i in rng.choice(len(DOMAINS), size, replace=False, p=w / w.sum()))
    tier = int(rng.choice(3, p=TIERS))
    return Customer(interests, tier, bool(rng.random() < P_LOYAL))


def customer_text(rng: np.random.Generator, customer: Customer) -> str:
    """The customer's own words: a review, a search or profile tags revealing their taste."""
    phrases = [pick(rng, DOMAINS[d].voice) for d in customer.interests]
    if customer.tier != 1 and rng.random() < 0.6:
        phrases.append(pick(rng, TIER_VOICE[customer.tier // 2]))
    if rng.random() < 0.4:
        phrases.insert(int(rng.integers(len(phrases) + 1)), pick(rng, NOISE))
    style = int(rng.integers(4))
    if style == 0:
        return "; ".join(phrases)
    if style == 1:
        return "search: " + " / ".join(phrases)
    if style == 2:
        return "Review: " + ". ".join(p[0].upper() + p[1:] for p in phrases) + "."
    return "profile tags: " + ", ".join(phrases)


def event_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` increasing unix seconds inside the window, at least two hours apart."""
    window = WINDOW_DAYS * DAY
    span = int(rng.uniform(14, WINDOW_DAYS - 3) * DAY)
    start = int(rng.integers(DAY, window - span - 2 * DAY))  # sessions stay inside the window
    offsets = np.sort(rng.integers(0, span, n))
    offsets = offsets + 7_200 * np.arange(n)  # strictly increasing, room for sessions
    return int(BASE_DATE.timestamp()) + start + offsets


def choose_item(
    rng: np.random.Generator,
    cat: Catalogue,
    candidates: np.ndarray,
    t: float,
    taken: list[int],
    power: float = 1.0,
    taste: np.ndarray | None = None,
) -> int | None:
    """A product from ``candidates`` by popularity at window fraction ``t``, skipping ``taken``.

    ``power`` > 1 sharpens the popularity (for the "popular product" jumps), 0 ignores it;
    ``taste`` (aligned with the catalogue) multiplies the weights.
    """
    ok = candidates[(cat.launch[candidates] <= t) & ~np.isin(candidates, taken)]
    if not len(ok):
        return None
    w = (cat.base_weight[ok] * np.exp(cat.drift[ok] * (t - 0.5))) ** power
    if taste is not None:
        w = w * taste[ok]
    return int(ok[rng.choice(len(ok), p=w / w.sum())])


def taste_weights(cat: Catalogue, customer: Customer, last_brand: dict[int, int]) -> np.ndarray:
    """How much the customer likes each product beyond popularity: price tier and brand loyalty."""
    gap = (cat.price_pct - TIER_CENTRE[customer.tier]) / TIER_WIDTH[customer.tier]
    taste = np.exp(-0.5 * gap**2)
    if customer.loyal:
        for d, brand in last_brand.items():
            taste[(cat.domain == d) & (cat.brand == brand)] *= LOYALTY
    return taste


def start_kind(rng: np.random.Generator, domain: int) -> int:
    """Where a customer enters a domain's chain: usually near its head."""
    n = len(DOMAINS[domain].kinds)
    w = 0.5 ** np.arange(n)
    return int(rng.choice(n, p=w / w.sum()))


def window_fraction(ts: int) -> float:
    """Position of a unix time in the window, 0 at its start and 1 at its end."""
    return (ts - int(BASE_DATE.timestamp())) / (WINDOW_DAYS * DAY)


def next_item(
    rng: np.random.Generator,
    cat: Catalogue,
    customer: Customer,
    state: tuple[int, int],
    t: float,
    taken: list[int],
    taste: np.ndarray,
) -> int | None:
    """The next product after ``state`` = (domain, chain position), or (-1, -1) at the start.

    Next kind of the chain with ``P_CHAIN``; a popular product with ``P_POPULAR``; otherwise (and
    at the end of a chain) a kind of one of the customer's interest domains. Inside the kind the
    customer's ``taste`` weighs in.
    """
    domain, pos = state
    u = rng.random()
    has_next = domain >= 0 and pos + 1 < len(DOMAINS[domain].kinds)
    if u >= 1.0 - P_POPULAR:
        item = choose_item(rng, cat, np.arange(len(cat.domain)), t, taken, power=1.5)
        if item is not None:
            return item
    if has_next and u < P_CHAIN:
        pos += 1
    else:
        domain = customer.interests[int(rng.integers(len(customer.interests)))]
        pos = start_kind(rng, domain)
    for candidates in (
        np.flatnonzero((cat.domain == domain) & (cat.kind == pos)),
        np.flatnonzero(cat.domain == domain),  # the kind is sold out for this customer
        np.arange(len(cat.domain)),
    ):
        power = 0.0 if rng.random() < cat.browse_share else 1.0
        item = choose_item(rng, cat, candidates, t, taken, power=power, taste=taste)
        if item is not None:
            return item
    return None


def purchase_path(
    rng: np.random.Generator, cat: Catalogue, customer: Customer, times: np.ndarray
) -> list[int]:
    """The products a customer takes at ``times`` (one per time, never the same twice)."""
    taken: list[int] = []
    state = (-1, -1)
    last_brand: dict[int, int] = {}
    for ts in times:
        taste = taste_weights(cat, customer, last_brand)
        item = next_item(rng, cat, customer, state, window_fraction(int(ts)), taken, taste)
        if item is not None:
            taken.append(item)
            state = (int(cat.domain[item]), int(cat.kind[item]))
            last_brand[state[0]] = int(cat.brand[item])
    return taken


def session(
    rng: np.random.Generator, spec: ShopSpec, cat: Catalogue, item: int, ts: int
) -> list[tuple[int, int, str]]:
    """(item, time, event) rows of one shopping step ending (usually) in buying ``item``.

    Views of alternatives of the same kind (browsing the shelf: any of them, not the popular
    ones), a view of the product, a cart, then the purchase; rows are at most 10 minutes apart and
    end at ``ts``.
    """
    alt_mean, p_view, p_cart, p_buy = spec.session
    same_kind = np.flatnonzero(
        (cat.domain == cat.domain[item]) & (cat.kind == cat.kind[item]) & (cat.launch <= 1.0)
    )
    alternatives = same_kind[(same_kind != item) & (cat.launch[same_kind] <= window_fraction(ts))]
    n_alt = min(int(rng.poisson(alt_mean)), 3, len(alternatives))
    events = [(int(a), "view") for a in rng.choice(alternatives, n_alt, replace=False)]
    if rng.random() < p_view:
        events.append((item, "view"))
    if rng.random() < p_cart:
        events.append((item, "cart"))
    if rng.random() < p_buy or not events:
        events.append((item, "purchase"))
    gaps = rng.integers(30, 600, len(events))
    times = ts - np.cumsum(gaps[::-1])[::-1] + gaps[-1]  # last row at ts
    return [(i, int(t), e) for (i, e), t in zip(events, times, strict=True)]


def quantity(rng: np.random.Generator, cat: Catalogue, item: int) -> int:
    """Units bought: consumables often come in twos and threes."""
    kind = DOMAINS[int(cat.domain[item])].kinds[int(cat.kind[item])]
    if kind.consumable:
        return min(int(rng.geometric(0.55)), 6)
    return 1 if rng.random() < 0.93 else 2


def customer_rows(
    rng: np.random.Generator, spec: ShopSpec, cat: Catalogue, customer: Customer
) -> list[tuple[int, int, str, int]]:
    """(item, time, event, quantity) rows of one customer: MIN_EVENTS to MAX_EVENTS of them."""
    budget = min(MIN_EVENTS + int(rng.poisson(spec.mean_extra_events)), MAX_EVENTS)
    times = event_times(rng, budget)
    path = purchase_path(rng, cat, customer, times)
    rows: list[tuple[int, int, str, int]] = []
    for item, ts in zip(path, times, strict=False):
        for i, t, event in session(rng, spec, cat, item, int(ts)):
            rows.append((i, t, event, quantity(rng, cat, i) if event == "purchase" else 1))
    return rows[:budget]


# --------------------------------------------------------------------------------------------
# Frames and files
# --------------------------------------------------------------------------------------------


def build_shop(
    rng: np.random.Generator, spec: ShopSpec
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """items, interactions and users frames of one shop."""
    cat = build_catalogue(rng, spec)
    n_total = spec.n_users + spec.n_cold_users
    numbers = rng.choice(np.arange(1, 10_000), n_total, replace=False)
    item_ids = cat.frame["item_id"].to_list()
    users, rows = [], []
    for c, number in enumerate(numbers):
        user = spec.user_id.format(int(number))
        customer = draw_customer(rng, spec)
        cold = c >= spec.n_users
        if cold or rng.random() < P_TEXT:
            users.append((user, customer_text(rng, customer)))
        if not cold:
            for item, ts, event, qty in customer_rows(rng, spec, cat, customer):
                rows.append((user, item_ids[item], ts, event, qty))
    interactions = pl.DataFrame(
        rows,
        schema={
            "user_id": pl.String,
            "item_id": pl.String,
            "timestamp": pl.Int64,
            "event": pl.String,
            "quantity": pl.Int64,
        },
        orient="row",
    )
    interactions = order_rows(rng, spec, interactions)
    if spec.extra_column != "event":
        interactions = interactions.drop("event")
    if spec.extra_column != "quantity":
        interactions = interactions.drop("quantity")
    users_frame = pl.DataFrame(
        users, schema={"user_id": pl.String, "text": pl.String}, orient="row"
    )
    return cat.frame, interactions, users_frame.sort("user_id")


def order_rows(rng: np.random.Generator, spec: ShopSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """Rows by customer then time, by time then customer, or shuffled, as the shop exports them."""
    if spec.row_order == "shuffled":
        return frame[rng.permutation(frame.height)]
    if spec.row_order == "time":
        return frame.sort("timestamp", "user_id")
    return frame.sort("user_id", "timestamp")


def generate(out_dir: Path, *, seed: int = 7) -> dict[str, Path]:
    """Write every shop under ``out_dir/{sources,targets}/<shop>/``; returns shop -> folder.

    Each shop draws from its own generator seeded by ``(seed, shop number)``, so the files are
    byte-identical for the same seed.
    """
    folders = {}
    for number, spec in enumerate(SHOPS):
        rng = np.random.default_rng([seed, number])
        items, interactions, users = build_shop(rng, spec)
        folder = Path(out_dir) / spec.role / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        items.write_parquet(folder / "items.parquet")
        interactions.write_parquet(folder / "interactions.parquet")
        users.write_parquet(folder / "users.parquet")
        folders[spec.name] = folder
    return folders


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python sample_data/generate.py [--out DIR] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for name, folder in generate(args.out, seed=args.seed).items():
        counts = [
            f"{pl.scan_parquet(f).select(pl.len()).collect().item()} {f.stem}"
            for f in sorted(folder.glob("*.parquet"))
        ]
        print(f"{folder.parent.name}/{name}: {', '.join(counts)}")


if __name__ == "__main__":
    main()
