-- The Yealink cloud (YMCS) site a site's phones are registered to; NULL: the one of the same name.
ALTER TABLE sites ADD COLUMN ymcs_site TEXT;
