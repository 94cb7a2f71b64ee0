// Client library: one Japanese message for every error code of
// docs/protocol.md ("Error codes"; core/md_err.h), for the clerk and the
// verifier alike. An unknown code gets a generic message that still shows the
// code, so that a help desk can look it up. tests/browser checks that every
// code in core/md_err.h has an entry here.

export const ERROR_MESSAGES = {
  // protocol and transport
  bad_json: '通信内容を読み取れませんでした。画面を再読み込みしてください。',
  unknown_type: 'この端末の画面が新しい通信方式に対応していません。画面を再読み込みしてください。',
  schema_invalid: '送信内容に不備がありました。入力を確かめて、もう一度お試しください。',
  message_too_large: '送信内容が大きすぎます。短くしてお試しください。',
  rate_limited: '操作が続けて行われました。少し待ってからお試しください。',
  not_authenticated: 'ログインが必要です。もう一度ログインしてください。',
  forbidden: 'この操作は許可されていません。',
  wrong_listener: 'この窓口では受け付けられない操作です。',
  origin_refused: '接続元のページが正しくありません。正規のアドレスから開き直してください。',
  content_type_invalid: '送信の形式が正しくありません。画面を再読み込みしてください。',
  too_many_staff_sockets: 'このアカウントで開いている画面が多すぎます。使っていない画面を閉じてください。',
  // devices
  device_certificate_required: 'この端末の証明書が見つかりません。管理者に連絡してください。',
  device_certificate_invalid: 'この端末の証明書が無効です(期限切れまたは失効)。管理者に連絡してください。',
  device_unknown: 'この端末は登録されていません。管理者に連絡してください。',
  device_disabled: 'この端末は利用停止中です。管理者に連絡してください。',
  device_revoked: 'この端末の証明書は失効しています。管理者に連絡してください。',
  device_certificate_unregistered: 'この端末の証明書は登録されているものと異なります。管理者に連絡してください。',
  crl_unavailable: '証明書の失効情報を確認できないため、端末を接続できません。管理者に連絡してください。',
  device_post_office_mismatch: 'この端末は別の郵便局に登録されています。管理者に連絡してください。',
  too_many_connections: 'この端末で開いている画面が多すぎます。ほかの画面を閉じてください。',
  tls_version_too_low: '通信の暗号方式が市町村の基準を満たしていません。管理者に連絡してください。',
  network_not_allowed: 'この回線からは接続できません(市町村の設定)。管理者に連絡してください。',
  // staff login
  credentials_invalid: 'ユーザー名またはパスワードが違います。',
  totp_invalid: 'ワンタイムコードが違うか、使用済みです。',
  account_locked: 'ログインの失敗が続いたため、しばらくロックされています。',
  login_expired: 'ログインの有効期限が切れました。もう一度ログインしてください。',
  // registry rules
  municipality_code_invalid: '市町村コードが正しくありません。',
  municipality_unknown: 'この市町村は登録されていません。',
  post_office_unknown: 'この郵便局は登録されていません。',
  procedure_unknown: 'この手続は登録されていません。',
  post_office_simplified: '簡易郵便局では、この手続を取り扱うことができません。',
  procedure_not_designated: 'この郵便局は、この手続の取扱いを指定されていません。',
  designation_expired: 'この郵便局での取扱期間は終了しています。',
  designation_not_yet_valid: 'この郵便局での取扱いはまだ始まっていません。',
  procedure_awaiting_upgrade: 'この手続は、統合端末の改修が終わるまでご利用いただけません。',
  council_resolution_required: 'この手続の指定には議会の議決が必要です。',
  designation_period_invalid: '指定の期間が正しくありません。',
  wrong_municipality: 'ほかの市町村の申請は扱えません。',
  // queue and sessions
  request_pending: 'この端末にはすでに受付中の申請があります。',
  session_unknown: 'この申請は見つかりません(すでに終了した可能性があります)。',
  session_state: 'いまの状態ではこの操作はできません。',
  already_assigned: 'この申請は、ほかの確認担当者がすでに受け付けました。',
  verifier_busy: '対応中の確認があります。終了してから受け付けてください。',
  media_capacity: 'いま映像の接続を受け付けられる上限に達しています。申請は受付待ちのまま残っています。少し待ってから、もう一度「受け付ける」を押してください。',
  session_moved: 'この確認は、あとから接続した画面で続いています。この画面は閉じてください。',
  media_not_seen: '申請者の映像がまだ届いていないため「確認完了」にはできません。映像が映ってから記録してください。',
  queue_timeout: '確認担当者につながりませんでした。時間をおいてもう一度お申し込みください。',
  media_failed: '映像と音声の接続を準備できませんでした。もう一度お試しください。',
  sdp_invalid: '映像の接続情報が正しくありませんでした。画面を再読み込みしてください。',
  sdp_unsupported: 'このブラウザーの映像方式には対応していません。',
  bundle_required: 'このブラウザーの接続方式には対応していません。',
  codec_mismatch: '双方の端末に共通の映像方式がありません。管理者に連絡してください。',
  dtls_fingerprint_mismatch: '暗号化された接続を確認できませんでした。もう一度お試しください。',
  dtls_failed: '暗号化された接続を確立できませんでした。もう一度お試しください。',
  ice_failed: 'ネットワークの経路が見つかりませんでした。回線を確かめてください。',
  // data channels
  sctp_failed: 'チャットとファイルの通信が切れました。',
  datachannel_protocol: 'ファイルの送受信に失敗しました。もう一度お送りください。',
  datachannel_refused: 'いまはこの送信を受け付けられません。前の送信が終わってからお試しください。',
  chat_invalid: 'メッセージが空か、長すぎます。',
  file_name_invalid: 'ファイル名が正しくありません。名前を変えてお試しください。',
  file_too_large: 'ファイルが大きすぎます(市町村の上限を超えています)。',
  file_type_not_allowed: 'この種類のファイルは送れません(写真・PDF などをお使いください)。',
  file_type_mismatch: 'ファイルの中身が種類と一致しません。',
  file_hash_mismatch: 'ファイルが途中で壊れました。もう一度お送りください。',
  still_not_requested: '撮影の依頼がないため、写真を送れませんでした。',
  still_resolution_mismatch: '写真の大きさを確認できませんでした。もう一度撮影してください。',
  evidence_key_unavailable: '記録の暗号鍵が使えません。管理者に連絡してください。',
  evidence_corrupt: '記録が改ざんまたは破損しています。管理者に連絡してください。',
  // recording (docs/protocol.md, recording consent)
  recording_off: 'この市町村では録画を行いません。',
  recording_required: '録画が必要です。同意のうえ録画してから「確認完了」にしてください。',
  consent_refused: '録画に同意いただけなかったため、手続を終了しました。',
  recording_failed: '録画に失敗しました。',
  recording_unknown: 'この録画は見つかりません。',
  recording_purged: 'この録画は保存期間が過ぎたため消去されています。',
  recorder_failed: '録画装置で問題が起きました。管理者に連絡してください。',
  recording_export_failed: '録画を書き出せませんでした。',
  // operator side
  config_invalid: 'ゲートウェイの設定に誤りがあります。管理者に連絡してください。',
  audit_signing_key_missing: '監査記録の署名鍵がありません。管理者に連絡してください。',
  audit_key_mismatch: '監査記録の署名鍵が登録されたものと一致しません。管理者に連絡してください。',
  audit_checkpoint_invalid: '監査記録のチェックポイントを検証できません。管理者に連絡してください。',
  audit_chain_broken: '監査記録の検証に失敗しました。管理者に連絡してください。',
  crypto_failed: '暗号処理に失敗しました。管理者に連絡してください。',
  store_failed: 'データベースの処理に失敗しました。時間をおいてお試しください。',
  internal: 'システムで問題が起きました。時間をおいてお試しください。',
  reason_required: '閲覧の理由を入力してください(1〜500文字)。',
  invalid_argument: '入力内容が正しくありません。',
  not_found: '見つかりませんでした。',
  already_exists: 'すでに登録されています。',
  out_of_memory: 'システムが混み合っています。時間をおいてお試しください。',
};

// The Japanese text for an error code, with the code itself for the help desk.
export function errorText(code) {
  const known = ERROR_MESSAGES[code];
  if (known) return known;
  return `エラーが発生しました(コード: ${code || '不明'})。もう一度お試しいただき、続く場合は管理者に連絡してください。`;
}

// Why a session ended (`ended.reason`), in plain Japanese.
export const ENDED_REASONS = {
  outcome: '確認担当者が結果を記録しました。',
  cancelled: '申込みを取り消しました。',
  queue_timeout: '確認担当者につながりませんでした。',
  connect_timeout: '映像の接続が時間内にできませんでした。',
  hangup: '通話が切断されました。',
  network: 'ネットワークが切れたまま戻りませんでした。',
  media: '映像と音声の接続ができませんでした。',
  shutdown: 'システムの停止により終了しました。',
  consent_refused: '録画に同意いただけなかったため終了しました。',
};

export function endedReasonText(reason) {
  return ENDED_REASONS[reason] || `終了しました(理由: ${reason || '不明'})。`;
}

// `ended.outcome` as the headline a person reads.
export const OUTCOMES = {
  verified: '確認完了',
  not_verified: '確認できませんでした',
  aborted: '中止',
};
