-- Field-correct registration and re-checks. A site's sip_server is the account domain (and the
-- registrar when no proxy is set); outbound proxies ("host:port") carry the traffic on a
-- multi-tenant PBX. A line may name its own domain (from the PBX's device URI). recheck is
-- when phones look for changes on their own: daily:HH:MM-HH:MM, every:Nh|Nm, off.

ALTER TABLE sites ADD COLUMN outbound_proxy TEXT;
ALTER TABLE sites ADD COLUMN outbound_proxy_2 TEXT;
ALTER TABLE sites ADD COLUMN recheck TEXT NOT NULL DEFAULT 'daily:02:00-04:00';
ALTER TABLE lines ADD COLUMN domain TEXT;

-- DNS NAPTR/SRV as a transport. sites.transport carries a CHECK that SQLite cannot alter, and
-- rebuilding the table would cascade-delete its phones: the choice gets a column of its own
-- (transport then holds 'udp', unused).
ALTER TABLE sites ADD COLUMN transport_dns INTEGER NOT NULL DEFAULT 0;
