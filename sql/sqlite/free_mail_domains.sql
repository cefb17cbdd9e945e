-- The default free-mail domains, seeded only into an empty table so your own rows are kept.
-- A lead whose e-mail is at one of these has no account. The same rows as
-- sql/bigquery/free_mail_domains.sql.
INSERT INTO free_mail_domains (domain)
SELECT domain FROM (
  SELECT 'gmail.com' AS domain UNION ALL
  SELECT 'googlemail.com' UNION ALL
  SELECT 'yahoo.com' UNION ALL
  SELECT 'yahoo.co.uk' UNION ALL
  SELECT 'yahoo.fr' UNION ALL
  SELECT 'yahoo.de' UNION ALL
  SELECT 'ymail.com' UNION ALL
  SELECT 'hotmail.com' UNION ALL
  SELECT 'hotmail.co.uk' UNION ALL
  SELECT 'hotmail.fr' UNION ALL
  SELECT 'outlook.com' UNION ALL
  SELECT 'live.com' UNION ALL
  SELECT 'msn.com' UNION ALL
  SELECT 'aol.com' UNION ALL
  SELECT 'icloud.com' UNION ALL
  SELECT 'me.com' UNION ALL
  SELECT 'mac.com' UNION ALL
  SELECT 'proton.me' UNION ALL
  SELECT 'protonmail.com' UNION ALL
  SELECT 'pm.me' UNION ALL
  SELECT 'gmx.com' UNION ALL
  SELECT 'gmx.de' UNION ALL
  SELECT 'gmx.net' UNION ALL
  SELECT 'web.de' UNION ALL
  SELECT 'mail.com' UNION ALL
  SELECT 'yandex.com' UNION ALL
  SELECT 'yandex.ru' UNION ALL
  SELECT 'mail.ru' UNION ALL
  SELECT 'zoho.com' UNION ALL
  SELECT 'fastmail.com' UNION ALL
  SELECT 'hey.com' UNION ALL
  SELECT 'tutanota.com' UNION ALL
  SELECT 'qq.com' UNION ALL
  SELECT '163.com' UNION ALL
  SELECT '126.com' UNION ALL
  SELECT 'orange.fr' UNION ALL
  SELECT 'free.fr' UNION ALL
  SELECT 't-online.de' UNION ALL
  SELECT 'libero.it' UNION ALL
  SELECT 'comcast.net'
)
WHERE NOT EXISTS (SELECT 1 FROM free_mail_domains);
