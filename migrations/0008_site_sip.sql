-- Field-correct registration and re-checks. A site's sip_server is the account domain (and the
-- registrar when no proxy is set); outbound proxies ("host:port") carry the traffic on a
-- multi-tenant PBX. A line may name its own domain (from the PBX's device URI). recheck is
-- when phones look for changes on their own: daily:HH:MM-HH:MM, every:Nh|Nm, off.

ALTER TABLE sites ADD COLUMN outbound_proxy TEXT;
ALTER TABLE sites ADD COLUMN outbound_proxy_2 TEXT;
ALTER TABLE sites ADD COLUMN recheck TEXT NOT NULL DEFAULT 'daily:02:00-04:00';
ALTER TABLE lines ADD COLUMN domain TEXT;
