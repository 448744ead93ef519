#!/usr/bin/python3
"""Offline seeding of the dirsync lab Samba AD DC.

Run with the DC STOPPED, using Debian's /usr/bin/python3 (Samba bindings):

    /usr/bin/python3 seed.py --lab-dir DIR [--extra-users N] [--extra-ous M]

Opens DIR/private/sam.ldb directly (no LDAP), adds the base seed and the
optional bench users, and prints the DC's dnsHostName on stdout.
Progress goes to stderr.
"""

import argparse
import base64
import sys
import time

import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

BATCH = 500
BASE_USER_PASSWORD = "LabUser-2026!"
PLAIN_USER_PASSWORD = "PlainUser-2026!"

GROUP_SECURITY_GLOBAL = -2147483646
GROUP_DISTRIBUTION_GLOBAL = 2
UAC_NORMAL = 512
UAC_DISABLED = 514


def log(msg):
    print("seed: " + msg, file=sys.stderr, flush=True)


def pwd_value(password):
    return ('"%s"' % password).encode("utf-16-le")


class Seeder:
    def __init__(self, samdb):
        self.db = samdb
        self.base = str(samdb.domain_dn())
        self.pending = 0
        self.total = 0
        self.db.transaction_start()

    def add(self, entry):
        self.db.add(entry)
        self.pending += 1
        self.total += 1
        if self.pending >= BATCH:
            self.flush()

    def flush(self):
        self.db.transaction_commit()
        self.pending = 0
        self.db.transaction_start()

    def finish(self):
        self.db.transaction_commit()

    def dn(self, rel):
        return "%s,%s" % (rel, self.base) if rel else self.base


# --------------------------------------------------------------------------
# Base seed
# --------------------------------------------------------------------------

OUS = [
    "OU=Corp",
    "OU=Sales,OU=Corp",
    "OU=EMEA,OU=Sales,OU=Corp",
    "OU=Paris,OU=EMEA,OU=Sales,OU=Corp",
    "OU=Americas,OU=Sales,OU=Corp",
    "OU=Engineering,OU=Corp",
    "OU=Platform,OU=Engineering,OU=Corp",
    "OU=Apps,OU=Engineering,OU=Corp",
    "OU=IT,OU=Corp",
    "OU=Groups,OU=Corp",
    "OU=Staging",
    "OU=Disabled Accounts",
]
CONTAINERS = ["CN=Service Objects,OU=Corp"]

SITES = {
    "paris": dict(office="Paris HQ", street="12 Rue de la Paix", l="Paris",
                  st="Ile-de-France", postal="75002", c="FR", co="France",
                  cc="250", phone="+33 1 40 00 0"),
    "london": dict(office="London", street="1 King William St", l="London",
                   st="Greater London", postal="EC4N 7AR", c="GB",
                   co="United Kingdom", cc="826", phone="+44 20 7000 0"),
    "nyc": dict(office="New York", street="350 5th Ave", l="New York",
                st="NY", postal="10118", c="US", co="United States",
                cc="840", phone="+1 212 555 0"),
    "seattle": dict(office="Seattle", street="400 Broad St", l="Seattle",
                    st="WA", postal="98109", c="US", co="United States",
                    cc="840", phone="+1 206 555 0"),
}

# (first, last, ou, title, department, site, manager-key or None, flags)
# flags: set of "disabled", "fabrikam", "shared", "alias", "nopwd"
USERS = [
    ("Alice", "Martin", "OU=Corp", "Chief Executive Officer", "Executive", "paris", None, {"alias"}),
    ("Bruno", "Lefevre", "OU=Sales,OU=Corp", "VP Sales", "Sales", "paris", "alice.martin", set()),
    ("Claire", "Dubois", "OU=Paris,OU=EMEA,OU=Sales,OU=Corp", "Account Manager", "Sales", "paris", "bruno.lefevre", {"alias"}),
    ("Damien", "Moreau", "OU=Paris,OU=EMEA,OU=Sales,OU=Corp", "Account Manager", "Sales", "paris", "bruno.lefevre", set()),
    ("Emma", "Laurent", "OU=Paris,OU=EMEA,OU=Sales,OU=Corp", "Sales Assistant", "Sales", "paris", "claire.dubois", {"shared"}),
    ("Fabien", "Simon", "OU=EMEA,OU=Sales,OU=Corp", "Regional Director EMEA", "Sales", "london", "bruno.lefevre", set()),
    ("Grace", "Taylor", "OU=EMEA,OU=Sales,OU=Corp", "Account Executive", "Sales", "london", "fabien.simon", {"alias"}),
    ("Henry", "Walker", "OU=EMEA,OU=Sales,OU=Corp", "Account Executive", "Sales", "london", "fabien.simon", {"shared"}),
    ("Isabel", "Garcia", "OU=Americas,OU=Sales,OU=Corp", "Regional Director Americas", "Sales", "nyc", "bruno.lefevre", set()),
    ("Jack", "Miller", "OU=Americas,OU=Sales,OU=Corp", "Account Executive", "Sales", "nyc", "isabel.garcia", set()),
    ("Karen", "Davis", "OU=Americas,OU=Sales,OU=Corp", "Sales Engineer", "Sales", "nyc", "isabel.garcia", {"alias"}),
    ("Liam", "Wilson", "OU=Americas,OU=Sales,OU=Corp", "Account Executive", "Sales", "seattle", "isabel.garcia", {"fabrikam"}),
    ("Maya", "Anderson", "OU=Engineering,OU=Corp", "VP Engineering", "Engineering", "seattle", "alice.martin", set()),
    ("Noah", "Thomas", "OU=Platform,OU=Engineering,OU=Corp", "Engineering Manager", "Platform", "seattle", "maya.anderson", set()),
    ("Olivia", "Jackson", "OU=Platform,OU=Engineering,OU=Corp", "Senior Software Engineer", "Platform", "seattle", "noah.thomas", {"alias"}),
    ("Paul", "White", "OU=Platform,OU=Engineering,OU=Corp", "Software Engineer", "Platform", "seattle", "noah.thomas", set()),
    ("Quentin", "Harris", "OU=Platform,OU=Engineering,OU=Corp", "Site Reliability Engineer", "Platform", "paris", "noah.thomas", set()),
    ("Rachel", "Clark", "OU=Platform,OU=Engineering,OU=Corp", "Software Engineer", "Platform", "london", "noah.thomas", set()),
    ("Samuel", "Lewis", "OU=Apps,OU=Engineering,OU=Corp", "Engineering Manager", "Applications", "nyc", "maya.anderson", set()),
    ("Tina", "Robinson", "OU=Apps,OU=Engineering,OU=Corp", "Software Engineer", "Applications", "nyc", "samuel.lewis", {"alias"}),
    ("Umar", "Young", "OU=Apps,OU=Engineering,OU=Corp", "QA Engineer", "Applications", "nyc", "samuel.lewis", set()),
    ("Victoria", "King", "OU=Apps,OU=Engineering,OU=Corp", "UX Designer", "Applications", "paris", "samuel.lewis", set()),
    ("William", "Scott", "OU=Apps,OU=Engineering,OU=Corp", "Software Engineer", "Applications", "london", "samuel.lewis", set()),
    ("Xavier", "Green", "OU=IT,OU=Corp", "IT Manager", "IT", "paris", "alice.martin", set()),
    ("Yasmine", "Baker", "OU=IT,OU=Corp", "Systems Administrator", "IT", "paris", "xavier.green", {"alias"}),
    ("Zoe", "Adams", "OU=IT,OU=Corp", "Helpdesk Technician", "IT", "london", "xavier.green", set()),
    ("Adrien", "Nelson", "OU=IT,OU=Corp", "Network Engineer", "IT", "nyc", "xavier.green", set()),
    ("Beatrice", "Carter", "OU=Corp", "Chief Financial Officer", "Finance", "paris", "alice.martin", set()),
    ("Cedric", "Mitchell", "OU=Corp", "Legal Counsel", "Legal", "london", "alice.martin", set()),
    ("Diane", "Perez", "OU=Corp", "HR Manager", "Human Resources", "nyc", "alice.martin", {"alias"}),
    ("Elliot", "Roberts", "OU=Staging", "Contractor", "Engineering", "seattle", None, set()),
    ("Fiona", "Turner", "OU=Staging", "Intern", "Sales", "paris", None, set()),
    ("Gabriel", "Phillips", "OU=Staging", "New Hire", "IT", "london", None, set()),
    ("Hugo", "Campbell", "OU=Disabled Accounts", "Former Account Manager", "Sales", "paris", None, {"disabled"}),
    ("Ines", "Parker", "OU=Disabled Accounts", "Former Engineer", "Platform", "seattle", None, {"disabled"}),
    ("Julien", "Evans", "OU=Disabled Accounts", "Former Intern", "IT", "nyc", None, {"disabled"}),
    ("Kevin", "Edwards", "OU=Americas,OU=Sales,OU=Corp", "Account Executive (on leave)", "Sales", "nyc", "isabel.garcia", {"disabled"}),
    ("Laura", "Collins", "OU=Paris,OU=EMEA,OU=Sales,OU=Corp", "Account Manager", "Sales", "paris", "claire.dubois", set()),
    ("Marc", "Stewart", "OU=Platform,OU=Engineering,OU=Corp", "Software Engineer", "Platform", "paris", "noah.thomas", set()),
    ("Nina", "Sanchez", "OU=Apps,OU=Engineering,OU=Corp", "Product Manager", "Applications", "seattle", "samuel.lewis", set()),
]


def user_entry(seeder, dn, sam, given, sn, display, upn, mail, proxies,
               title, dept, site, idx, employee_id, uac, password=None,
               manager_dn=None, description=None):
    s = SITES[site]
    e = {
        "dn": dn,
        "objectClass": "user",
        "sAMAccountName": sam,
        "userPrincipalName": upn,
        "givenName": given,
        "sn": sn,
        "displayName": display,
        "mail": mail,
        "proxyAddresses": proxies,
        "title": title,
        "department": dept,
        "company": "Contoso Ltd",
        "physicalDeliveryOfficeName": s["office"],
        "telephoneNumber": "%s%03d" % (s["phone"], idx % 1000),
        "mobile": "+1 555 01%05d" % (idx % 100000),
        "streetAddress": s["street"],
        "l": s["l"],
        "st": s["st"],
        "postalCode": s["postal"],
        "c": s["c"],
        "co": s["co"],
        "countryCode": s["cc"],
        "employeeID": employee_id,
        "userAccountControl": str(uac),
    }
    if password is not None:
        e["unicodePwd"] = pwd_value(password)
    if manager_dn:
        e["manager"] = manager_dn
    if description:
        e["description"] = description
    return e


def seed_base(seeder, samdb):
    base = seeder.base

    # UPN suffixes on the Partitions container.
    part = "CN=Partitions,%s" % samdb.get_config_basedn()
    m = ldb.Message()
    m.dn = ldb.Dn(samdb, part)
    m["uPNSuffixes"] = ldb.MessageElement(
        [b"contoso.test", b"fabrikam.invalid"], ldb.FLAG_MOD_ADD, "uPNSuffixes")
    samdb.modify(m)

    for ou in OUS:
        name = ou.split(",")[0][3:]
        seeder.add({"dn": seeder.dn(ou), "objectClass": "organizationalUnit",
                    "description": "dirsync lab OU %s" % name})
    for cn in CONTAINERS:
        seeder.add({"dn": seeder.dn(cn), "objectClass": "container",
                    "description": "dirsync lab plain container"})

    dns = {}
    idx = 0
    for (first, last, ou, title, dept, site, mgr, flags) in USERS:
        idx += 1
        key = "%s.%s" % (first.lower(), last.lower())
        display = "%s %s" % (first, last)
        dn = seeder.dn("CN=%s,%s" % (display, ou))
        suffix = "fabrikam.invalid" if "fabrikam" in flags else "contoso.test"
        upn = "%s@%s" % (key, suffix)
        mail = "%s@%s" % (key, suffix)
        proxies = ["SMTP:%s" % mail]
        if "alias" in flags:
            proxies.append("smtp:%s%s@contoso.test" % (first[0].lower(), last.lower()))
            proxies.append("smtp:%s@contoso.onmicrosoft.com" % key)
        if "shared" in flags:
            proxies.append("smtp:shared@contoso.test")
        disabled = "disabled" in flags
        seeder.add(user_entry(
            seeder, dn, key[:20], first, last, display, upn, mail, proxies,
            title, dept, site, idx, "E%05d" % (1000 + idx),
            UAC_DISABLED if disabled else UAC_NORMAL,
            password=None if disabled else BASE_USER_PASSWORD,
            manager_dn=dns.get(mgr)))
        dns[key] = dn

    # A user whose names start with '#'.
    idx += 1
    dn = seeder.dn("CN=\\#hash.user,OU=IT,OU=Corp")
    seeder.add(user_entry(
        seeder, dn, "#hash.user", "Hash", "User", "#hash.user",
        "hash.user@contoso.test", "hash.user@contoso.test",
        ["SMTP:hash.user@contoso.test"], "Test Account", "IT", "paris", idx,
        "E%05d" % (1000 + idx), UAC_NORMAL, password=BASE_USER_PASSWORD,
        description="name starts with #"))
    dns["#hash.user"] = dn

    # Plain, non-admin user with a known password for bind tests.
    idx += 1
    dn = seeder.dn("CN=Plain User,OU=IT,OU=Corp")
    seeder.add(user_entry(
        seeder, dn, "plain.user", "Plain", "User", "Plain User",
        "plain.user@corp.dirsync.test", "plain.user@contoso.test",
        ["SMTP:plain.user@contoso.test"], "Bind Test Account", "IT", "paris",
        idx, "E%05d" % (1000 + idx), UAC_NORMAL, password=PLAIN_USER_PASSWORD,
        manager_dn=dns["xavier.green"]))
    dns["plain.user"] = dn

    def members(pred):
        return [dns["%s.%s" % (f.lower(), l.lower())]
                for (f, l, ou, t, d, s, m, fl) in USERS if pred(ou, d, fl)]

    g = lambda cn: seeder.dn("CN=%s,OU=Groups,OU=Corp" % cn)
    groups = [
        ("Platform Team", GROUP_SECURITY_GLOBAL, members(lambda ou, d, fl: d == "Platform" and "disabled" not in fl), None),
        ("Apps Team", GROUP_SECURITY_GLOBAL, members(lambda ou, d, fl: d == "Applications"), None),
        ("Engineering", GROUP_SECURITY_GLOBAL, [g("Platform Team"), g("Apps Team"), dns["maya.anderson"]], None),
        ("Sales EMEA", GROUP_SECURITY_GLOBAL, members(lambda ou, d, fl: "EMEA" in ou), None),
        ("Sales Americas", GROUP_SECURITY_GLOBAL, members(lambda ou, d, fl: "Americas" in ou), None),
        ("Sales", GROUP_SECURITY_GLOBAL, [g("Sales EMEA"), g("Sales Americas"), dns["bruno.lefevre"]], None),
        ("IT Admins", GROUP_SECURITY_GLOBAL, members(lambda ou, d, fl: ou == "OU=IT,OU=Corp") + [dns["plain.user"]], None),
        ("All Staff", GROUP_SECURITY_GLOBAL, [g("Engineering"), g("Sales"), g("IT Admins"), dns["alice.martin"],
                                              dns["beatrice.carter"], dns["cedric.mitchell"], dns["diane.perez"]], None),
        ("Sales Announcements", GROUP_DISTRIBUTION_GLOBAL, [g("Sales")] + members(lambda ou, d, fl: d == "Executive"),
         "sales-announcements"),
        ("Engineering News", GROUP_DISTRIBUTION_GLOBAL, [g("Engineering"), dns["alice.martin"]], "engineering-news"),
    ]
    for (cn, gtype, mem, mail) in groups:
        e = {"dn": g(cn), "objectClass": "group",
             "sAMAccountName": cn.replace(" ", "-").lower()[:20],
             "groupType": str(gtype), "description": "dirsync lab group %s" % cn,
             "member": mem}
        if mail:
            e["mail"] = "%s@contoso.test" % mail
            e["displayName"] = cn
            e["proxyAddresses"] = ["SMTP:%s@contoso.test" % mail,
                                   "smtp:%s@contoso.onmicrosoft.com" % mail]
        seeder.add(e)
    seeder.flush()
    return idx


# --------------------------------------------------------------------------
# The second forest (several forests into one tenant)
# --------------------------------------------------------------------------

# (first, last, ou, title, department, upn, mail, employeeID)
FABRIKAM_USERS = [
    # The same person as corp's Alice Martin (same mail and employeeID): one cloud user.
    ("Alice", "Martin", "OU=Research,OU=Fabrikam", "Research Advisor", "Research",
     "alice.martin@fabrikam.dirsync.test", "alice.martin@contoso.test", "E01001"),
    ("Oscar", "Lindqvist", "OU=Research,OU=Fabrikam", "Research Scientist", "Research",
     "oscar.lindqvist@contoso.test", "oscar.lindqvist@contoso.test", "F00001"),
    ("Petra", "Novak", "OU=Research,OU=Fabrikam", "Lab Manager", "Research",
     "petra.novak@contoso.test", "petra.novak@contoso.test", "F00002"),
    ("Ravi", "Shah", "OU=Operations,OU=Fabrikam", "Operations Lead", "Operations",
     "ravi.shah@contoso.test", "ravi.shah@contoso.test", "F00003"),
    # Not corp's Bruno Lefevre (another mail, another employeeID) but the same UPN: an error
    # naming both.
    ("Bruno", "Lefevre", "OU=Operations,OU=Fabrikam", "Technician", "Operations",
     "bruno.lefevre@contoso.test", "b.lefevre@fabrikam.dirsync.test", "F00004"),
]


def seed_fabrikam(seeder, samdb):
    part = "CN=Partitions,%s" % samdb.get_config_basedn()
    m = ldb.Message()
    m.dn = ldb.Dn(samdb, part)
    m["uPNSuffixes"] = ldb.MessageElement([b"contoso.test"], ldb.FLAG_MOD_ADD, "uPNSuffixes")
    samdb.modify(m)
    for ou in ["OU=Fabrikam", "OU=Research,OU=Fabrikam", "OU=Operations,OU=Fabrikam"]:
        seeder.add({"dn": seeder.dn(ou), "objectClass": "organizationalUnit",
                    "description": "dirsync lab OU %s" % ou.split(",")[0][3:]})
    members = []
    for idx, (first, last, ou, title, dept, upn, mail, employee_id) in enumerate(FABRIKAM_USERS):
        display = "%s %s" % (first, last)
        dn = seeder.dn("CN=%s,%s" % (display, ou))
        sam = ("%s.%s" % (first, last)).lower()[:20]
        seeder.add(user_entry(
            seeder, dn, sam, first, last, display, upn, mail, ["SMTP:%s" % mail],
            title, dept, "london", 500 + idx, employee_id, UAC_NORMAL,
            password=BASE_USER_PASSWORD))
        members.append(dn)
    seeder.add({"dn": seeder.dn("CN=Fabrikam Research,OU=Fabrikam"), "objectClass": "group",
                "sAMAccountName": "fabrikam-research",
                "groupType": str(GROUP_SECURITY_GLOBAL),
                "description": "dirsync lab group Fabrikam Research", "member": members[:3]})
    seeder.flush()


# --------------------------------------------------------------------------
# Bench users
# --------------------------------------------------------------------------

DEPTS = ["Sales", "Engineering", "Finance", "Marketing", "Support", "IT",
         "Operations", "Legal"]
TITLES = ["Analyst", "Engineer", "Manager", "Specialist", "Consultant",
          "Coordinator", "Director", "Associate"]
SITE_KEYS = sorted(SITES)


def seed_bench(seeder, n, m):
    if n <= 0 and m <= 0:
        return
    seeder.add({"dn": seeder.dn("OU=Bench"), "objectClass": "organizationalUnit",
                "description": "dirsync lab bench users"})
    for j in range(m):
        seeder.add({"dn": seeder.dn("OU=Bench-%04d,OU=Bench" % j),
                    "objectClass": "organizationalUnit"})
    seeder.flush()
    t0 = time.time()
    tb = t0
    for i in range(n):
        j = i * m // n
        sam = "bench.user%06d" % i
        sn = "User%06d" % i
        mail = "%s@contoso.test" % sam
        site = SITE_KEYS[i % len(SITE_KEYS)]
        seeder.add(user_entry(
            seeder, seeder.dn("CN=%s,OU=Bench-%04d,OU=Bench" % (sam, j)),
            sam, "Bench", sn, "Bench %s" % sn, mail, mail,
            ["SMTP:%s" % mail, "smtp:%s@contoso.onmicrosoft.com" % sam],
            TITLES[i % len(TITLES)], DEPTS[(i // 7) % len(DEPTS)], site,
            i, "B%07d" % i, UAC_NORMAL if i % 50 else UAC_DISABLED))
        if (i + 1) % 2000 == 0:
            now = time.time()
            log("bench %d/%d users, last 2000 in %.1fs (%.0f/s), total %.1fs"
                % (i + 1, n, now - tb, 2000 / (now - tb), now - t0))
            tb = now
    seeder.flush()
    if n:
        log("bench: %d users in %d OUs in %.1fs" % (n, m, time.time() - t0))


def extend_schema(samdb, ldif_path):
    """Adds the attributes of `ldif_path` to the schema, then reloads it (schemaUpdateNow).
    The caller opened samdb with "dsdb:schema update allowed" set."""
    schema_dn = str(samdb.get_schema_basedn())
    with open(ldif_path) as f:
        text = f.read().replace("${SCHEMA_DN}", schema_dn)
    reload = "dn:\nchangetype: modify\nadd: schemaUpdateNow\nschemaUpdateNow: 1\n"
    for changetype, msg in samdb.parse_ldif(text):
        if changetype == ldb.CHANGETYPE_MODIFY:
            # A class may only name attributes the loaded schema already has.
            samdb.modify_ldif(reload)
            samdb.modify(msg)
        else:
            samdb.add(msg)
    samdb.modify_ldif(reload)
    log("schema extended from %s" % ldif_path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab-dir", required=True)
    ap.add_argument("--forest", choices=["corp", "fabrikam"], default="corp")
    ap.add_argument("--extra-users", type=int, default=0)
    ap.add_argument("--extra-ous", type=int, default=0)
    ap.add_argument("--exchange-schema", metavar="LDIF",
                    help="extend the schema with this LDIF first")
    args = ap.parse_args()

    t0 = time.time()
    # batch_mode: ldb skips the per-operation sub-transaction, which otherwise
    # copies every touched index list (objectClass=user etc., O(total users))
    # on each add -> quadratic seeding.  Any failure aborts the whole batch.
    cache_size = 20011 if args.extra_users < 50000 else 200003
    lp = LoadParm()
    lp.load("%s/etc/smb.conf" % args.lab_dir)
    if args.exchange_schema:
        # Only for this offline session: the running DC keeps its schema fixed, as a forest
        # whose schema admins have gone home.
        lp.set("dsdb:schema update allowed", "true")
    if args.exchange_schema:
        # Outside batch mode: schemaUpdateNow needs transactions of its own.
        extend_schema(SamDB(url="%s/private/sam.ldb" % args.lab_dir,
                            session_info=system_session(), lp=lp),
                      args.exchange_schema)
    samdb = SamDB(url="%s/private/sam.ldb" % args.lab_dir,
                  session_info=system_session(), lp=lp,
                  flags=ldb.FLG_NOSYNC,
                  options=["batch_mode:1",
                           "transaction_index_cache_size:%d" % cache_size])
    seeder = Seeder(samdb)
    try:
        if args.forest == "fabrikam":
            seed_fabrikam(seeder, samdb)
        else:
            seed_base(seeder, samdb)
        log("base seed: %d objects in %.1fs" % (seeder.total, time.time() - t0))
        seed_bench(seeder, args.extra_users, args.extra_ous)
        seeder.finish()
    except Exception:
        samdb.transaction_cancel()
        raise

    res = samdb.search(base="", scope=ldb.SCOPE_BASE, attrs=["dnsHostName"])
    print(str(res[0]["dnsHostName"][0]))
    log("done: %d objects in %.1fs" % (seeder.total, time.time() - t0))


if __name__ == "__main__":
    main()
